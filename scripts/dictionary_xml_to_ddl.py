#!/usr/bin/env python3
"""Print `CREATE DICTIONARY` statements equivalent to a ClickHouse `*_dictionary.xml` file.

clickhouse-local (and so the chdb-based local server of scripts/chdb_server.py) never reads
`dictionaries_config`: LocalServer::main loads the executable-UDF XML
(`loadOrReloadUserDefinedExecutableFunctions`) but never calls `Context::loadOrReloadDictionaries`,
the only place that registers the XML repository, and `SYSTEM RELOAD CONFIG` is refused there
("not supported in clickhouse-local"). This translates each <dictionary> element of the file,
element by element, into the DDL that ClickHouse turns into the same configuration
(getDictionaryConfigurationFromAST), so the file's commands, formats, layouts, attribute types
and defaults can be exercised on such a server.

    dictionary_xml_to_ddl.py [--database DB] FILE.xml    # statements separated by ";\\n"

Unsupported elements are an error (exit 1), never dropped silently.
"""
import argparse
import re
import sys
import xml.etree.ElementTree as ET

NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Unsupported(Exception):
    pass


def lit(s):
    return "'" + (s or "").replace("\\", "\\\\").replace("'", "\\'") + "'"


def value(s):
    s = (s or "").strip()
    return s if NUMBER.match(s) or s in ("true", "false") else lit(s)


def ident(s, what):
    s = (s or "").strip()
    if not IDENT.match(s):
        raise Unsupported(f"{what} {s!r} is not a plain identifier")
    return s


def params(el):
    """`key value` pairs; nested elements become `key(...)` (e.g. HEADERS(header(name 'x' value 'y')))."""
    out = []
    for c in el:
        if len(c):
            out.append(f"{c.tag}({' '.join(params(c))})")
        else:
            out.append(f"{c.tag.upper()} {value(c.text)}")
    return out


def only_child(el, what):
    kids = [c for c in el if c.tag != "settings"]
    if len(kids) != 1:
        raise Unsupported(f"{what}: expected exactly one element, found {[c.tag for c in kids]}")
    return kids[0]


def source(d):
    s = d.find("source")
    if s is None:
        raise Unsupported("no <source>")
    kind = only_child(s, "<source>")
    text = f"SOURCE({kind.tag.upper()}({' '.join(params(kind))}))"
    settings = s.find("settings")
    if settings is not None:
        pairs = ", ".join(f"{c.tag} = {value(c.text)}" for c in settings)
        text += f"\nSETTINGS({pairs})"
    return text


def layout(d):
    el = d.find("layout")
    if el is None:
        raise Unsupported("no <layout>")
    kind = only_child(el, "<layout>")
    return f"LAYOUT({kind.tag.upper()}({' '.join(params(kind))}))"


def lifetime(d):
    el = d.find("lifetime")
    if el is None:
        return "LIFETIME(0)"
    lo, hi = el.find("min"), el.find("max")
    if lo is not None and hi is not None:
        return f"LIFETIME(MIN {int(lo.text)} MAX {int(hi.text)})"
    return f"LIFETIME({int(el.text)})"


def attribute(a, key):
    name = ident(a.findtext("name"), "attribute name")
    typ = (a.findtext("type") or "").strip()
    if not typ:
        raise Unsupported(f"attribute {name}: no <type>")
    col = f"`{name}` {typ}"
    known = {"name", "type", "null_value", "expression", "hierarchical", "injective"}
    extra = [c.tag for c in a if c.tag not in known]
    if extra:
        raise Unsupported(f"attribute {name}: unsupported {extra}")
    nv = a.find("null_value")
    if nv is not None and not key:
        text = nv.text or ""
        quoted = typ.startswith(("String", "Nullable(String", "FixedString", "Date", "UUID"))
        col += f" DEFAULT {lit(text) if quoted or not text.strip() else value(text)}"
    if a.findtext("expression"):
        col += f" EXPRESSION {a.findtext('expression')}"
    for flag in ("hierarchical", "injective"):
        if (a.findtext(flag) or "").strip().lower() in ("1", "true"):
            col += f" {flag.upper()}"
    return name, col


def structure(d):
    st = d.find("structure")
    if st is None:
        raise Unsupported("no <structure>")
    cols, keys = [], []
    for c in st:
        if c.tag == "id":
            name = ident(c.findtext("name"), "id name")
            cols.append(f"`{name}` UInt64")
            keys.append(name)
        elif c.tag == "key":
            for a in c.findall("attribute"):
                name, col = attribute(a, True)
                cols.append(col)
                keys.append(name)
        elif c.tag == "attribute":
            cols.append(attribute(c, False)[1])
        else:
            raise Unsupported(f"<structure>: unsupported <{c.tag}>")
    if not keys:
        raise Unsupported("<structure>: no <id> or <key>")
    return cols, keys


def dictionary(d, database):
    name = ident(d.findtext("name"), "dictionary name")
    known = {"name", "source", "layout", "structure", "lifetime", "comment"}
    extra = [c.tag for c in d if c.tag not in known]
    if extra:
        raise Unsupported(f"dictionary {name}: unsupported {extra}")
    cols, keys = structure(d)
    full = f"`{database}`.`{name}`" if database else f"`{name}`"
    body = ",\n    ".join(cols)
    return (f"CREATE DICTIONARY {full}\n(\n    {body}\n)\nPRIMARY KEY {', '.join(keys)}\n"
            f"{source(d)}\n{layout(d)}\n{lifetime(d)}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database", help="create the dictionaries in this database")
    p.add_argument("file")
    a = p.parse_args()
    if a.database is not None:
        ident(a.database, "--database")
    try:
        root = ET.parse(a.file).getroot()
        stmts = [dictionary(d, a.database) for d in root.iter("dictionary")]
        if not stmts:
            raise Unsupported("no <dictionary> element")
    except (ET.ParseError, OSError, Unsupported, ValueError, TypeError) as e:
        print(f"FAILED: {a.file}: {e}", file=sys.stderr)
        sys.exit(1)
    print(";\n".join(stmts))


if __name__ == "__main__":
    main()
