-- Reference dictionaries with an EXECUTABLE source: ClickHouse runs `b24ch exec dict …`.
--
-- On a ClickHouse *server* executable sources must be declared in XML
-- (clickhouse_config/b24_reference_dictionary.xml holds the same four dictionaries): the server
-- refuses them in DDL with DICTIONARY_ACCESS_DENIED ("Dictionaries with executable dictionary
-- source are not allowed to be created from DDL query"). clickhouse-local (and the chdb-based
-- local server of `b24ch demo`) accepts this DDL as it is, and needs it: it never reads
-- `dictionaries_config` (LocalServer loads the `*_function.xml` UDFs but never calls
-- Context::loadOrReloadDictionaries). scripts/dictionary_xml_to_ddl.py translates the XML.
-- clickhouse-local also runs no LIFETIME reloads (ExternalDictionariesLoader enables periodic
-- updates only for ApplicationType::SERVER): reload there with SYSTEM RELOAD DICTIONARY.
--
-- `b24ch-dict` is the wrapper script clickhouse_config/b24ch-dict.sh installed in user_scripts
-- (EXECUTE_DIRECT 1 finds it there); it passes --config with an absolute path.

-- Users, loaded whole.
CREATE DICTIONARY IF NOT EXISTS b24.b24_users
(
    ID UInt64,
    NAME String,
    LAST_NAME String,
    EMAIL String,
    WORK_POSITION String,
    ACTIVE Bool
)
PRIMARY KEY ID
SOURCE(EXECUTABLE(COMMAND 'b24ch-dict user' FORMAT 'JSONEachRow' EXECUTE_DIRECT 1))
LAYOUT(HASHED())
LIFETIME(MIN 300 MAX 600);

-- Departments, loaded whole.
CREATE DICTIONARY IF NOT EXISTS b24.b24_departments
(
    ID UInt64,
    NAME String,
    PARENT UInt64
)
PRIMARY KEY ID
SOURCE(EXECUTABLE(COMMAND 'b24ch-dict department' FORMAT 'JSONEachRow' EXECUTE_DIRECT 1))
LAYOUT(HASHED())
LIFETIME(MIN 600 MAX 1200);

-- Stages / sources / types by (ENTITY_ID, STATUS_ID) as a cache: ClickHouse writes only the
-- keys it misses to b24ch's stdin, and b24ch lists only those rows.
CREATE DICTIONARY IF NOT EXISTS b24.b24_stages
(
    ENTITY_ID String,
    STATUS_ID String,
    NAME String,
    SEMANTICS String,
    SORT Int64
)
PRIMARY KEY ENTITY_ID, STATUS_ID
SOURCE(EXECUTABLE(COMMAND 'b24ch-dict crm_status --keys --key ENTITY_ID,STATUS_ID' FORMAT 'JSONEachRow' EXECUTE_DIRECT 1))
LAYOUT(COMPLEX_KEY_CACHE(SIZE_IN_CELLS 10000))
LIFETIME(MIN 300 MAX 600);

-- Labels of enumeration (list) user fields: (entity, field, option id) -> label.
CREATE DICTIONARY IF NOT EXISTS b24.b24_enum_labels
(
    entity String,
    field String,
    id UInt64,
    label String
)
PRIMARY KEY entity, field, id
SOURCE(EXECUTABLE(COMMAND 'b24ch-dict enum_labels' FORMAT 'JSONEachRow' EXECUTE_DIRECT 1))
LAYOUT(COMPLEX_KEY_HASHED())
LIFETIME(MIN 600 MAX 1200);
