//! Deterministic data generation.
//!
//! Every value is a pure function of (seed, table salt, row id, field code), computed on demand,
//! so huge portals start instantly and a value never changes unless the control API overrides it.
//! Correlated fields (stage ↔ category, modify ≥ create, HAS_PHONE ↔ PHONE) read the fields
//! they depend on through [`value`], which honours overrides.

use chrono::DateTime;

use super::hash::{mix, salt};
use super::model::{FieldDef, FmVal, Gen, HistPart, PortalData, Table, UfGen, Val};

/// First and last instants of generated history (fixed so data does not depend on run time).
pub(crate) const DATA_START: i64 = 1_672_531_200; // 2023-01-01T00:00:00Z
pub(crate) const DATA_END: i64 = 1_748_736_000; // 2025-06-01T00:00:00Z

struct Rng {
    state: u64,
}

impl Rng {
    fn new(seed: u64, table: &Table, id: u64, field: &str) -> Rng {
        Rng {
            state: mix(mix(seed ^ table.salt) ^ mix(id) ^ salt(field)),
        }
    }
    fn next(&mut self) -> u64 {
        self.state = mix(self.state);
        self.state
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn pct(&mut self, p: u8) -> bool {
        self.below(100) < u64::from(p)
    }
    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items
            .get(self.below(items.len() as u64) as usize)
            .copied()
            .unwrap_or("")
    }
}

const FIRST: &[&str] = &[
    "Анна",
    "Иван",
    "Мария",
    "John",
    "Zoë",
    "Олег",
    "Fatima",
    "李",
    "Ярослава",
    "Kai",
];
const LAST: &[&str] = &[
    "Иванова",
    "Petrov",
    "O'Brien",
    "Смирнов",
    "Müller",
    "Nguyễn",
    "Кузнецова",
    "Smith",
];
const DEPTS: &[&str] = &[
    "Продажи",
    "R&D",
    "Marketing \"Growth\"",
    "Бухгалтерия",
    "Support 🛟",
];

/// The current value of a cell: an override, a materialized value, or the generated one.
pub(crate) fn value(data: &PortalData, t: &Table, id: u64, f: &FieldDef) -> Val {
    if let Some(rows) = &t.materialized {
        let idx = t.fields.iter().position(|x| x.code == f.code);
        return rows
            .get(&id)
            .and_then(|r| idx.and_then(|i| r.get(i)))
            .cloned()
            .unwrap_or(Val::Null);
    }
    if let Some(ov) = t.overrides.get(&id)
        && let Some((_, v)) = ov.iter().find(|(c, _)| *c == f.code)
    {
        return v.clone();
    }
    generate(data, t, id, f)
}

/// Value of another field of the same row, by code.
fn sibling(data: &PortalData, t: &Table, id: u64, code: &str) -> Val {
    t.field(code).map_or(Val::Null, |f| value(data, t, id, f))
}

fn nullable(r: &mut Rng, null_pct: u8, v: impl FnOnce(&mut Rng) -> Val) -> Val {
    if r.pct(null_pct) { Val::Null } else { v(r) }
}

fn table_size(data: &PortalData, name: &str) -> u64 {
    data.tables.get(name).map_or(0, |t| t.spread)
}

fn ref_id(r: &mut Rng, n: u64, null_pct: u8) -> Val {
    if n == 0 || r.pct(null_pct) {
        Val::Null
    } else {
        Val::Int((1 + r.below(n)) as i64)
    }
}

fn created(t: &Table, id: u64, r: &mut Rng) -> i64 {
    let span = (DATA_END - DATA_START - 86_400) as u64;
    let n = t.spread.max(1);
    let slot = (span / n).max(1);
    DATA_START + ((id.saturating_sub(1)) * span / n + r.below(slot)) as i64
}

fn datetime_of(v: &Val) -> i64 {
    match v {
        Val::DateTime(s) => *s,
        _ => DATA_START,
    }
}

fn date_from_unix(secs: i64) -> Val {
    DateTime::from_timestamp(secs, 0).map_or(Val::Null, |d| Val::Date(d.date_naive()))
}

fn tricky(r: &mut Rng, id: u64) -> String {
    let base = r.pick(TRICKY);
    format!("{base} #{id}")
}

fn generate(data: &PortalData, t: &Table, id: u64, f: &FieldDef) -> Val {
    let mut r = Rng::new(data.seed, t, id, &f.code);
    let r = &mut r;
    match &f.genr {
        Gen::Null => Val::Null,
        Gen::Id => Val::Int(id as i64),
        Gen::Const(v) => v.clone(),
        Gen::Title(prefix) => {
            // Most titles are plain; every 5th one is a nasty string.
            if r.pct(20) {
                Val::Str(tricky(r, id))
            } else {
                Val::Str(format!("{prefix} #{id}"))
            }
        }
        Gen::FirstName => Val::Str(r.pick(FIRST).to_string()),
        Gen::LastName => nullable(r, 10, |r| Val::Str(r.pick(LAST).to_string())),
        Gen::Phrase(np) => nullable(r, *np, |r| Val::Str(tricky(r, id))),
        Gen::Word(words, np) => nullable(r, *np, |r| Val::Str(r.pick(words).to_string())),
        Gen::IntRange(lo, hi, np) => {
            let (lo, hi) = (*lo, *hi);
            nullable(r, *np, |r| {
                Val::Int(lo + r.below((hi - lo + 1).max(1) as u64) as i64)
            })
        }
        Gen::Amount(max) => {
            let max = *max;
            Val::Amount(if r.pct(10) {
                0
            } else {
                r.below((max * 100).max(1) as u64) as i64
            })
        }
        Gen::YesNo(p) => Val::Bool(r.pct(*p)),
        Gen::User => ref_id(r, table_size(data, "user"), 0),
        Gen::Company => ref_id(r, table_size(data, "company"), 30),
        Gen::Lead => ref_id(r, table_size(data, "lead"), 60),
        Gen::FirstContact => match sibling(data, t, id, "CONTACT_IDS") {
            Val::List(v) => v.first().cloned().unwrap_or(Val::Null),
            _ => ref_id(r, table_size(data, "contact"), 40),
        },
        Gen::ContactIds => {
            let n = table_size(data, "contact");
            let k = if n == 0 { 0 } else { r.below(4) };
            let mut ids: Vec<i64> = Vec::new();
            for _ in 0..k {
                let c = (1 + r.below(n)) as i64;
                if !ids.contains(&c) {
                    ids.push(c);
                }
            }
            Val::List(ids.into_iter().map(Val::Int).collect())
        }
        Gen::CompanyIds => match sibling(data, t, id, "COMPANY_ID") {
            Val::Null => Val::List(vec![]),
            v => Val::List(vec![v]),
        },
        Gen::Observers => {
            let n = table_size(data, "user");
            let k = if n == 0 { 0 } else { r.below(3) };
            let mut ids: Vec<i64> = Vec::new();
            for _ in 0..k {
                let u = (1 + r.below(n)) as i64;
                if !ids.contains(&u) {
                    ids.push(u);
                }
            }
            Val::List(ids.into_iter().map(Val::Int).collect())
        }
        Gen::Parent(etid) => {
            let name = PortalData::table_name_for(*etid);
            ref_id(r, table_size(data, &name), 60)
        }
        Gen::Category => {
            let cats = data.category_ids(t.entity_type_id.unwrap_or(2));
            if cats.is_empty() {
                Val::Int(0)
            } else {
                Val::Int(cats[r.below(cats.len() as u64) as usize])
            }
        }
        Gen::Stage => {
            let cat = sibling(data, t, id, "CATEGORY_ID").as_i64().unwrap_or(0);
            let stages = data.stages_for(t.entity_type_id.unwrap_or(2), cat);
            stages
                .get(r.below(stages.len() as u64) as usize)
                .map_or(Val::Null, |(s, _)| Val::Str(s.clone()))
        }
        Gen::StageSemantic => {
            let code = if t.field("STAGE_ID").is_some() {
                "STAGE_ID"
            } else {
                "STATUS_ID"
            };
            Val::Str(semantic_of(data, t, id, code))
        }
        Gen::Closed => Val::Bool(semantic_of(data, t, id, "STAGE_ID") != "P"),
        Gen::LeadStatus => {
            let stages = data.stages_for(1, 0);
            stages
                .get(r.below(stages.len() as u64) as usize)
                .map_or(Val::Null, |(s, _)| Val::Str(s.clone()))
        }
        Gen::LeadSemantic => Val::Str(semantic_of(data, t, id, "STATUS_ID")),
        Gen::Currency => Val::Str(r.pick(&["RUB", "RUB", "RUB", "USD", "EUR"]).to_string()),
        Gen::Created => Val::DateTime(created(t, id, r)),
        Gen::Modified => {
            let c = datetime_of(&created_of(data, t, id));
            Val::DateTime(c + r.below((DATA_END - c).max(1) as u64) as i64)
        }
        Gen::Moved => {
            // From the generated modification time: a later edit (an override of it) does not
            // move the item to another stage, so MOVED_TIME and stage history stay put.
            let c = datetime_of(&created_of(data, t, id));
            let m = datetime_of(&generated_modified_of(data, t, id)).max(c);
            Val::DateTime(c + r.below((m - c + 1) as u64) as i64)
        }
        Gen::DateAround(np) => {
            let c = datetime_of(&created_of(data, t, id));
            nullable(r, *np, |r| {
                date_from_unix(c + r.below(60 * 86_400) as i64 - 10 * 86_400)
            })
        }
        Gen::Birthday => nullable(r, 40, |r| {
            date_from_unix(-315_619_200 + r.below(45 * 365 * 86_400) as i64)
        }),
        Gen::Fm(type_id) => Val::Fm(fm_values(r, id, type_id)),
        Gen::HasFm(type_id) => {
            Val::Bool(matches!(sibling(data, t, id, type_id), Val::Fm(v) if !v.is_empty()))
        }
        Gen::Uf(g) => uf_value(data, r, id, f, *g),
        Gen::UserEmail => Val::Str(format!("user{id}@example.com")),
        Gen::RegDate => date_from_unix(created(t, id, r) - created(t, id, r) % 86_400),
        Gen::UserDepartments => {
            let n = table_size(data, "department").max(1);
            Val::List(vec![Val::Int((1 + r.below(n)) as i64)])
        }
        Gen::DeptName => Val::Str(if id == 1 {
            "Demo portal".to_string()
        } else {
            format!("{} {id}", r.pick(DEPTS))
        }),
        Gen::DeptParent => {
            if id <= 1 {
                Val::Null
            } else {
                Val::Int((id / 2) as i64)
            }
        }
        Gen::Hist(part) => hist_value(data, t, id, *part),
        Gen::GroupStage => {
            let per_group = super::work::GROUP_STAGES.len() as i64;
            match sibling(data, t, id, "GROUP_ID").as_i64() {
                Some(g) if g > 0 => {
                    Val::Int((g - 1) * per_group + 1 + r.below(per_group as u64) as i64)
                }
                _ => Val::Int(0),
            }
        }
        Gen::ProductRowOwner(part) => super::productrows::owner_value(data, id, *part),
        Gen::Address(part) => super::addresses::value(data, id, *part),
        Gen::Binding(part) => super::bindings::value(data, id, *part),
        Gen::Comment(part) => super::timeline::value(data, id, *part, r.below(1_000)),
    }
}

fn created_of(data: &PortalData, t: &Table, id: u64) -> Val {
    let code = ["DATE_CREATE", "CREATED_TIME", "CREATED", "CREATED_DATE"]
        .into_iter()
        .find(|c| t.field(c).is_some())
        .unwrap_or("DATE_CREATE");
    sibling(data, t, id, code)
}

/// The modification time as generated, ignoring overrides set through the control API.
fn generated_modified_of(data: &PortalData, t: &Table, id: u64) -> Val {
    [
        "DATE_MODIFY",
        "UPDATED_TIME",
        "LAST_UPDATED",
        "CHANGED_DATE",
        "DATE_UPDATE",
    ]
    .into_iter()
    .find_map(|c| t.field(c))
    .map_or(Val::Null, |f| generate(data, t, id, f))
}

fn semantic_of(data: &PortalData, t: &Table, id: u64, stage_code: &str) -> String {
    let stage = sibling(data, t, id, stage_code);
    let Val::Str(stage) = stage else {
        return "P".into();
    };
    let etid = if stage_code == "STATUS_ID" {
        1
    } else {
        t.entity_type_id.unwrap_or(2)
    };
    let cat = sibling(data, t, id, "CATEGORY_ID").as_i64().unwrap_or(0);
    data.stages_for(etid, cat)
        .iter()
        .find(|(s, _)| *s == stage)
        .map_or_else(|| "P".to_string(), |(_, sem)| sem.to_string())
}

fn fm_values(r: &mut Rng, id: u64, type_id: &str) -> Vec<FmVal> {
    let k = r.below(3);
    let type_idx = match type_id {
        "PHONE" => 0,
        "EMAIL" => 1,
        "WEB" => 2,
        _ => 3,
    };
    (0..k)
        .map(|i| {
            let (vt, value) = match type_id {
                "PHONE" => (
                    r.pick(&["WORK", "MOBILE", "HOME"]),
                    format!(
                        "+7 9{:02} {:03}-{:02}-{:02}",
                        r.below(100),
                        r.below(1000),
                        r.below(100),
                        id % 100
                    ),
                ),
                "EMAIL" => (
                    r.pick(&["WORK", "HOME"]),
                    format!("client{id}.{i}@example.com"),
                ),
                "WEB" => (
                    r.pick(&["WORK", "OTHER"]),
                    format!("https://example.com/c/{id}?a=1&b=<{i}>"),
                ),
                _ => (
                    r.pick(&["TELEGRAM", "SKYPE", "OPENLINE"]),
                    format!("im_{id}_{i}"),
                ),
            };
            FmVal {
                id: id * 16 + type_idx * 4 + i + 1,
                type_id: type_id.to_string(),
                value_type: vt.to_string(),
                value,
            }
        })
        .collect()
}

fn uf_scalar(data: &PortalData, r: &mut Rng, id: u64, f: &FieldDef, g: UfGen) -> Val {
    match g {
        UfGen::Str => Val::Str(tricky(r, id)),
        UfGen::Int => Val::Int(r.below(100_000) as i64 - 1000),
        UfGen::Double => Val::Float((r.below(10_000_000) as f64) / 100.0),
        UfGen::Bool => Val::Bool(r.pct(50)),
        UfGen::Date => date_from_unix(DATA_START + r.below(900 * 86_400) as i64),
        UfGen::DateTime => Val::DateTime(DATA_START + r.below(900 * 86_400) as i64),
        UfGen::Enum => {
            let opts = f.uf.as_ref().map(|u| u.options.as_slice()).unwrap_or(&[]);
            opts.get(r.below(opts.len() as u64) as usize)
                .map_or(Val::Null, |o| Val::Enum(o.id))
        }
        UfGen::Money => Val::Money {
            cents: r.below(10_000_000) as i64,
            currency: r.pick(&["RUB", "USD", "EUR"]).to_string(),
        },
        UfGen::Url => Val::Str(format!("https://example.com/p/{id}?q=a&b=<c>")),
        UfGen::Address => Val::Str(format!(
            "Улица Ленина, {}, Москва, 101000|55.7{:04};37.6{:04}|{}",
            r.below(200),
            r.below(10_000),
            r.below(10_000),
            r.below(1000) + 1
        )),
        UfGen::File => Val::File(id * 7 + r.below(7) + 1),
        UfGen::Employee => ref_id(r, table_size(data, "user"), 0),
        UfGen::Crm => {
            let (prefix, table) = [
                ("D", "deal"),
                ("C", "contact"),
                ("CO", "company"),
                ("L", "lead"),
            ][r.below(4) as usize];
            let n = table_size(data, table).max(1);
            Val::Binding(format!("{prefix}_{}", 1 + r.below(n)))
        }
        UfGen::CrmStatus => Val::Str(r.pick(&["IT", "BANKING", "MANUFACTURING"]).to_string()),
        UfGen::Iblock => Val::Int(100 + r.below(100) as i64),
        UfGen::Rest => Val::Str(format!("rating:{}", r.below(6))),
    }
}

fn uf_value(data: &PortalData, r: &mut Rng, id: u64, f: &FieldDef, g: UfGen) -> Val {
    if f.multiple {
        let k = r.below(4);
        let mut vals = Vec::new();
        for _ in 0..k {
            let v = uf_scalar(data, r, id, f, g);
            if !v.is_null() && !vals.contains(&v) {
                vals.push(v);
            }
        }
        Val::List(vals)
    } else if r.pct(15) {
        Val::Null
    } else {
        uf_scalar(data, r, id, f, g)
    }
}

fn hist_value(data: &PortalData, t: &Table, id: u64, part: HistPart) -> Val {
    // The owner is the table of the history's entityTypeId: leads, deals or a smart process.
    let etid = t.entity_type_id.unwrap_or(2);
    let lead = etid == 1;
    let owner_id = id.div_ceil(2);
    let creation = id % 2 == 1;
    let Some(owner) = data.tables.get(&PortalData::table_name_for(etid)) else {
        return Val::Null;
    };
    let stage_code = if lead { "STATUS_ID" } else { "STAGE_ID" };
    let cat = if lead {
        0
    } else {
        sibling(data, owner, owner_id, "CATEGORY_ID")
            .as_i64()
            .unwrap_or(0)
    };
    let stages = data.stages_for(etid, cat);
    let first = stages.first().cloned().unwrap_or_default();
    match part {
        HistPart::Owner => Val::Int(owner_id as i64),
        HistPart::Category => Val::Int(cat),
        HistPart::Type => {
            if creation {
                Val::Int(1)
            } else {
                let sem = semantic_of(data, owner, owner_id, stage_code);
                Val::Int(if sem == "P" { 2 } else { 3 })
            }
        }
        HistPart::Time => {
            let code = match (creation, owner.kind) {
                (true, super::model::TableKind::Dynamic) => "CREATED_TIME",
                (true, _) => "DATE_CREATE",
                (false, _) => "MOVED_TIME",
            };
            sibling(data, owner, owner_id, code)
        }
        HistPart::Stage => {
            if creation {
                Val::Str(first.0)
            } else {
                sibling(data, owner, owner_id, stage_code)
            }
        }
        HistPart::Semantic => {
            if creation {
                Val::Str(first.1)
            } else {
                Val::Str(semantic_of(data, owner, owner_id, stage_code))
            }
        }
    }
}

/// Deterministic, tricky labels and values (Cyrillic, emoji, quotes, newlines, SQL).
pub(crate) const TRICKY: &[&str] = &[
    "Сделка с ООО «Ромашка»",
    "Deal \"quoted\" & <b>bold</b>",
    "'; DROP TABLE crm_deal; --",
    "Многострочный\nкомментарий\r\nс табом\t",
    "Emoji 🚀🔥 ünïcödé",
    "Path /api/v1\\back",
    "O'Reilly's \"best\" deal",
    "Простая сделка",
];
