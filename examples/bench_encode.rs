//! Throughput of the row path on one core, through the same functions `serve` / `sync` run:
//! a Bitrix24 `batch` answer body (50 chained `crm.deal.list` pages of 50 legacy rows) →
//! [`parse_batch_answer`] (one pass, rows kept as JSON text) → [`raw_rows`] + [`row_id`] (the
//! listing's envelope and ascending-ID check) → [`RowNormalizer::normalize_json`] → Parquet or
//! JSONEachRow, for deal-shaped rows (~60 columns with money, multiple enumeration, date,
//! datetime and multifield user fields).
//!
//! `cargo run --release --example bench_encode -- --rows 100000 --format parquet`
//! Prints rows/s per stage and the process's peak RSS (VmHWM), which should not grow with
//! `--rows` (batch bodies are generated and dropped one at a time).
use std::time::{Duration, Instant};

use b24ch::bitrix::listing::{raw_rows, row_id};
use b24ch::bitrix::raw::parse_batch_answer;
use b24ch::bitrix::{Batch, CommandOutcome, spec};
use b24ch::catalog::{Entity, EntityKind, EnumOption, Field};
use b24ch::encode::{Format, RowEncoder};
use b24ch::schema::{Cell, RowNormalizer, ServiceValues, ValueStyle, table_columns};

/// Rows per Bitrix24 page, and pages per `batch` call (one batch = 2,500 rows).
const PAGE_ROWS: usize = 50;
const BATCH_PAGES: usize = 50;

fn main() {
    let mut rows = 100_000usize;
    let mut format = Format::Parquet;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rows" => rows = args.next().and_then(|v| v.parse().ok()).unwrap_or(rows),
            "--format" => {
                format = args
                    .next()
                    .and_then(|v| Format::parse(&v))
                    .unwrap_or(format)
            }
            other => {
                eprintln!("unknown argument {other}; use --rows N --format parquet|jsoneachrow");
                std::process::exit(2);
            }
        }
    }
    let Some(deal) = spec("crm.deal") else {
        eprintln!("no crm.deal method spec");
        std::process::exit(1);
    };
    let entity = deal_entity();
    let columns = table_columns(&entity);
    let normalizer = RowNormalizer::new(&columns, ValueStyle::Legacy, "crm_deal");
    let mut encoder = match RowEncoder::new(format, &columns) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("encoder: {e}");
            std::process::exit(1);
        }
    };
    let service = ServiceValues {
        loaded_at_ms: 1_725_020_940_123,
        version: 1_725_020_940_123,
        is_deleted: false,
    };
    let mut batch = Batch::new();
    for k in 0..BATCH_PAGES {
        if let Err(e) = batch.push(format!("p{k}"), "crm.deal.list", serde_json::json!({})) {
            panic!("batch: {e}");
        }
    }

    let (mut t_parse, mut t_norm, mut t_enc) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let (mut in_bytes, mut out_bytes, mut issues, mut done) = (0usize, 0usize, 0usize, 0usize);
    let mut batch_rows: Vec<Vec<Cell>> = Vec::with_capacity(PAGE_ROWS * BATCH_PAGES);
    let mut last_id = 0i64;
    while done < rows {
        batch_rows.clear();
        let n = (PAGE_ROWS * BATCH_PAGES).min(rows - done);
        let body = batch_body(done, n);
        in_bytes += body.len();

        let t0 = Instant::now();
        let mut resp = match parse_batch_answer(&batch, 200, body.as_bytes()) {
            Ok(r) => r,
            Err(e) => panic!("generated batch answer: {e}"),
        };
        let mut pages = Vec::with_capacity(BATCH_PAGES);
        for k in 0..n.div_ceil(PAGE_ROWS) {
            let CommandOutcome::Ok(r) = resp.take(&format!("p{k}")) else {
                panic!("p{k} missing");
            };
            let page = match raw_rows(deal, &r) {
                Ok(p) => p,
                Err(e) => panic!("rows: {e}"),
            };
            for row in &page {
                match row_id(deal, row) {
                    Some(id) if id > last_id => last_id = id,
                    other => panic!("id {other:?} after {last_id}"),
                }
            }
            pages.push(page);
        }
        drop(resp);
        let t1 = Instant::now();
        for raw in pages.iter().flatten() {
            match normalizer.normalize_json(raw.json(), &service) {
                Ok(row) => {
                    issues += row.issues.len();
                    batch_rows.push(row.cells);
                }
                Err(e) => panic!("row: {e}"),
            }
        }
        drop(pages);
        let t2 = Instant::now();
        t_parse += t1 - t0;
        t_norm += t2 - t1;
        done += n;

        let t0 = Instant::now();
        match encoder.write_rows(&batch_rows) {
            Ok(b) => out_bytes += b.len(),
            Err(e) => panic!("encode: {e}"),
        }
        t_enc += t0.elapsed();
    }
    let t0 = Instant::now();
    match encoder.finish() {
        Ok(b) => out_bytes += b.len(),
        Err(e) => panic!("finish: {e}"),
    }
    t_enc += t0.elapsed();

    let total = t_parse + t_norm + t_enc;
    let rate = |d: Duration| done as f64 / d.as_secs_f64().max(1e-9);
    println!(
        "format={} rows={done} columns={} in={:.1}MB out={:.1}MB issues={issues}",
        format.clickhouse_name(),
        columns.len(),
        in_bytes as f64 / 1e6,
        out_bytes as f64 / 1e6
    );
    println!(
        "parse+split {:.0} rows/s | normalise {:.0} rows/s | encode {:.0} rows/s | end-to-end {:.0} rows/s ({:.2}s)",
        rate(t_parse),
        rate(t_norm),
        rate(t_enc),
        rate(total),
        total.as_secs_f64()
    );
    println!("peak RSS (VmHWM) {}", vm_hwm());
}

/// One `batch` answer carrying `n` rows from row `first` as chained pages `p0`, `p1`, …
fn batch_body(first: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 2_200 + 4_000);
    s.push_str("{\"result\":{\"result\":{");
    let pages = n.div_ceil(PAGE_ROWS);
    for k in 0..pages {
        if k > 0 {
            s.push(',');
        }
        let start = first + k * PAGE_ROWS;
        let rows = PAGE_ROWS.min(first + n - start);
        s.push_str(&format!("\"p{k}\":"));
        page_rows(&mut s, start, rows);
    }
    s.push_str("},\"result_error\":[],\"result_total\":[],\"result_next\":{");
    for k in 0..pages {
        if k > 0 {
            s.push(',');
        }
        s.push_str(&format!("\"p{k}\":{}", first + (k + 1) * PAGE_ROWS));
    }
    s.push_str("},\"result_time\":{");
    for k in 0..pages {
        if k > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "\"p{k}\":{{\"start\":1725020940.1,\"finish\":1725020940.2,\"duration\":0.1,\"processing\":0.09,\"date_start\":\"2024-08-30T15:29:00+03:00\",\"date_finish\":\"2024-08-30T15:29:00+03:00\",\"operating_reset_at\":1725021540,\"operating\":{}}}",
            k as f64 * 0.1
        ));
    }
    s.push_str("}},\"time\":{\"start\":1725020940.1,\"finish\":1725020945.2,\"duration\":5.1,\"processing\":5.0,\"date_start\":\"2024-08-30T15:29:00+03:00\",\"date_finish\":\"2024-08-30T15:29:05+03:00\",\"operating_reset_at\":1725021540,\"operating\":0}}");
    s
}

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn f(code: &str, t: &str, multiple: bool) -> Field {
    Field {
        code: code.into(),
        api_name: code.into(),
        bitrix_type: t.into(),
        multiple,
        required: false,
        user_field: code.starts_with("UF_"),
        label: code.into(),
        options: Vec::new(),
    }
}

/// The standard deal fields of crm.deal.fields plus typical user fields.
fn deal_entity() -> Entity {
    let spec: &[(&str, &str, bool)] = &[
        ("ID", "integer", false),
        ("TITLE", "string", false),
        ("TYPE_ID", "crm_status", false),
        ("STAGE_ID", "crm_status", false),
        ("PROBABILITY", "integer", false),
        ("CURRENCY_ID", "crm_currency", false),
        ("OPPORTUNITY", "double", false),
        ("IS_MANUAL_OPPORTUNITY", "char", false),
        ("TAX_VALUE", "double", false),
        ("LEAD_ID", "crm_lead", false),
        ("COMPANY_ID", "crm_company", false),
        ("CONTACT_ID", "crm_contact", false),
        ("QUOTE_ID", "crm_quote", false),
        ("BEGINDATE", "date", false),
        ("CLOSEDATE", "date", false),
        ("ASSIGNED_BY_ID", "user", false),
        ("CREATED_BY_ID", "user", false),
        ("MODIFY_BY_ID", "user", false),
        ("DATE_CREATE", "datetime", false),
        ("DATE_MODIFY", "datetime", false),
        ("OPENED", "char", false),
        ("CLOSED", "char", false),
        ("COMMENTS", "string", false),
        ("ADDITIONAL_INFO", "string", false),
        ("LOCATION_ID", "location", false),
        ("CATEGORY_ID", "crm_category", false),
        ("STAGE_SEMANTIC_ID", "string", false),
        ("IS_NEW", "char", false),
        ("IS_RECURRING", "char", false),
        ("IS_RETURN_CUSTOMER", "char", false),
        ("IS_REPEATED_APPROACH", "char", false),
        ("SOURCE_ID", "crm_status", false),
        ("SOURCE_DESCRIPTION", "string", false),
        ("ORIGINATOR_ID", "string", false),
        ("ORIGIN_ID", "string", false),
        ("MOVED_BY_ID", "user", false),
        ("MOVED_TIME", "datetime", false),
        ("LAST_ACTIVITY_TIME", "datetime", false),
        ("LAST_ACTIVITY_BY", "user", false),
        ("UTM_SOURCE", "string", false),
        ("UTM_MEDIUM", "string", false),
        ("UTM_CAMPAIGN", "string", false),
        ("UTM_CONTENT", "string", false),
        ("UTM_TERM", "string", false),
        ("UF_CRM_BUDGET", "money", false),
        ("UF_CRM_PREPAY", "money", false),
        ("UF_CRM_CHANNELS", "enumeration", true),
        ("UF_CRM_REGIONS", "enumeration", true),
        ("UF_CRM_KIND", "enumeration", false),
        ("UF_CRM_SIGNED", "date", false),
        ("UF_CRM_PAID", "date", false),
        ("UF_CRM_CALLBACK", "datetime", false),
        ("UF_CRM_CONTRACT", "string", false),
        ("UF_CRM_NOTE", "string", false),
        ("UF_CRM_INVOICE", "string", false),
        ("UF_CRM_VIP", "boolean", false),
        ("UF_CRM_PARTNER", "crm", false),
        ("UF_CRM_MANAGER", "employee", false),
        ("UF_CRM_SEATS", "integer", false),
        ("UF_CRM_DISCOUNT", "double", false),
        ("PHONE", "crm_multifield", true),
        ("EMAIL", "crm_multifield", true),
    ];
    let mut fields: Vec<Field> = spec.iter().map(|(c, t, m)| f(c, t, *m)).collect();
    for field in fields.iter_mut().filter(|f| f.bitrix_type == "enumeration") {
        field.options = (0..8)
            .map(|i| EnumOption {
                id: 3157 + i,
                value: format!("Option {i}"),
            })
            .collect();
    }
    Entity {
        name: "crm_deal".into(),
        kind: EntityKind::Crm,
        title: "Deal".into(),
        method: "crm.deal".into(),
        entity_type_id: None,
        companion: None,
        fields,
    }
}

/// The rows of one `crm.deal.list` page exactly as the legacy API prints them (strings
/// everywhere, `null`s, `""` empty dates, `false` empty multiple UFs, `\\/` escaping).
fn page_rows(s: &mut String, first: usize, n: usize) {
    use std::fmt::Write;
    s.push('[');
    for k in 0..n {
        let i = first + k;
        if k > 0 {
            s.push(',');
        }
        let day = 1 + i % 28;
        let month = 1 + i % 12;
        let hour = i % 24;
        let empty_date = i % 5 == 0;
        let _ = write!(
            s,
            concat!(
                "{{\"ID\":\"{id}\",\"TITLE\":\"Deal #{id} for \\\"Acme\\\" Ltd\",\"TYPE_ID\":\"SALE\",",
                "\"STAGE_ID\":\"C1:NEW\",\"PROBABILITY\":\"{prob}\",\"CURRENCY_ID\":\"EUR\",",
                "\"OPPORTUNITY\":\"{opp}.{cents:02}\",\"IS_MANUAL_OPPORTUNITY\":\"Y\",\"TAX_VALUE\":\"0.00\",",
                "\"LEAD_ID\":null,\"COMPANY_ID\":\"{company}\",\"CONTACT_ID\":\"{contact}\",\"QUOTE_ID\":null,",
                "\"BEGINDATE\":\"2024-{month:02}-{day:02}T02:00:00+02:00\",",
                "\"CLOSEDATE\":\"{closedate}\",",
                "\"ASSIGNED_BY_ID\":\"{user}\",\"CREATED_BY_ID\":\"1\",\"MODIFY_BY_ID\":\"{user}\",",
                "\"DATE_CREATE\":\"2024-{month:02}-{day:02}T{hour:02}:29:00+02:00\",",
                "\"DATE_MODIFY\":\"2024-{month:02}-{day:02}T{hour:02}:31:17+02:00\",",
                "\"OPENED\":\"Y\",\"CLOSED\":\"N\",",
                "\"COMMENTS\":\"[B]Call back[\\/B] about the contract, see https:\\/\\/example.com\\/d\\/{id}\",",
                "\"ADDITIONAL_INFO\":null,\"LOCATION_ID\":null,\"CATEGORY_ID\":\"1\",\"STAGE_SEMANTIC_ID\":\"P\",",
                "\"IS_NEW\":\"N\",\"IS_RECURRING\":\"N\",\"IS_RETURN_CUSTOMER\":\"{ret}\",\"IS_REPEATED_APPROACH\":\"N\",",
                "\"SOURCE_ID\":\"CALLBACK\",\"SOURCE_DESCRIPTION\":\"\",\"ORIGINATOR_ID\":null,\"ORIGIN_ID\":null,",
                "\"MOVED_BY_ID\":\"{user}\",\"MOVED_TIME\":\"2024-{month:02}-{day:02}T{hour:02}:29:00+02:00\",",
                "\"LAST_ACTIVITY_TIME\":\"2024-{month:02}-{day:02}T{hour:02}:29:00+02:00\",\"LAST_ACTIVITY_BY\":\"{user}\",",
                "\"UTM_SOURCE\":\"google\",\"UTM_MEDIUM\":\"CPC\",\"UTM_CAMPAIGN\":null,\"UTM_CONTENT\":null,\"UTM_TERM\":null,",
                "\"UF_CRM_BUDGET\":\"{opp}.50|EUR\",\"UF_CRM_PREPAY\":\"{prepay}\",",
                "\"UF_CRM_CHANNELS\":{channels},\"UF_CRM_REGIONS\":false,\"UF_CRM_KIND\":\"3159\",",
                "\"UF_CRM_SIGNED\":\"2024-{month:02}-{day:02}T03:00:00+03:00\",\"UF_CRM_PAID\":\"\",",
                "\"UF_CRM_CALLBACK\":\"2024-{month:02}-{day:02}T{hour:02}:00:00-05:00\",",
                "\"UF_CRM_CONTRACT\":\"CN-{id}\",\"UF_CRM_NOTE\":\"Заметка по сделке {id}\",\"UF_CRM_INVOICE\":null,",
                "\"UF_CRM_VIP\":\"{vip}\",\"UF_CRM_PARTNER\":\"CO_{company}\",\"UF_CRM_MANAGER\":\"{user}\",",
                "\"UF_CRM_SEATS\":\"{seats}\",\"UF_CRM_DISCOUNT\":\"7.5\",",
                "\"PHONE\":[{{\"ID\":\"{fm1}\",\"VALUE_TYPE\":\"WORK\",\"VALUE\":\"+4930{id:07}\",\"TYPE_ID\":\"PHONE\"}}],",
                "\"EMAIL\":[{{\"ID\":\"{fm2}\",\"VALUE_TYPE\":\"WORK\",\"VALUE\":\"deal{id}@example.com\",\"TYPE_ID\":\"EMAIL\"}},",
                "{{\"ID\":\"{fm3}\",\"VALUE_TYPE\":\"HOME\",\"VALUE\":\"home{id}@example.org\",\"TYPE_ID\":\"EMAIL\"}}]}}"
            ),
            id = i + 1,
            prob = i % 100,
            opp = 1_000 + (i * 7919) % 1_000_000,
            cents = i % 100,
            company = 1 + i % 5_000,
            contact = 1 + i % 20_000,
            month = month,
            day = day,
            hour = hour,
            closedate = if empty_date {
                String::new()
            } else {
                format!("2024-{month:02}-{day:02}T02:00:00+02:00")
            },
            user = 1 + i % 40,
            ret = if i % 3 == 0 { "Y" } else { "N" },
            prepay = if i % 2 == 0 { "" } else { "250|USD" },
            channels = if i % 4 == 0 {
                "false".to_string()
            } else {
                format!("[\"{}\",\"{}\"]", 3157 + i % 4, 3161 + i % 4)
            },
            vip = i % 2,
            seats = i % 50,
            fm1 = 3 * i + 1,
            fm2 = 3 * i + 2,
            fm3 = 3 * i + 3,
        );
    }
    s.push(']');
}
