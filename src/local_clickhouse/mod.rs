//! local_clickhouse
