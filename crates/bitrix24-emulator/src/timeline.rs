//! Timeline comments (`crm.timeline.comment.list|fields`, EN
//! api-reference/crm/timeline/comments/): comments of leads, deals, contacts and companies.
//! The list filter must name one owner (`ENTITY_TYPE` and `ENTITY_ID`, both required); the
//! owner must exist and be readable ("Access denied." otherwise); `ID`, `CREATED`, `AUTHOR_ID`
//! order it; 50 rows a page. `FILES` is an object keyed by file id (`{}` without files).
//! Comment `n` belongs to an owner of type `OWNERS[n % 5]`, id `(n * 7) % spread + 1`: many
//! owners get several comments, many none.

use super::fields::fd;
use super::json_out::J;
use super::model::PortalData;
use super::model::{CommentPart, FieldDef, Gen, Kind, TableKind, Val};

/// The portal table.
pub(crate) const TABLE: &str = "timeline_comment";
/// Owner types (`ENTITY_TYPE`) by comment number modulo 5, with their tables.
pub(crate) const OWNERS: [&str; 5] = ["deal", "deal", "lead", "contact", "company"];

fn fields() -> Vec<FieldDef> {
    let int = |code: &str, genr: Gen, title: &str| fd(code, "integer", Kind::Int, genr, title);
    vec![
        int("ID", Gen::Id, "ID").ro(),
        fd(
            "CREATED",
            "datetime",
            Kind::DateTime,
            Gen::Created,
            "Date Added",
        )
        .ro(),
        int(
            "ENTITY_ID",
            Gen::Comment(CommentPart::OwnerId),
            "ID of the entity to which the comment is linked",
        )
        .req()
        .immutable(),
        fd(
            "ENTITY_TYPE",
            "string",
            Kind::Str,
            Gen::Comment(CommentPart::OwnerType),
            "Type of the entity to which the comment is linked",
        )
        .req()
        .immutable(),
        fd("AUTHOR_ID", "integer", Kind::Int, Gen::User, "Author").immutable(),
        fd(
            "COMMENT",
            "string",
            Kind::Str,
            Gen::Phrase(5),
            "Comment Text",
        ),
        fd(
            "FILES",
            "attached_diskfile",
            Kind::File,
            Gen::Comment(CommentPart::Files),
            "List of Files",
        )
        .multi(),
    ]
}

/// One generated part of comment `id`.
pub(crate) fn value(data: &PortalData, id: u64, part: CommentPart, pick: u64) -> Val {
    let owner_type = OWNERS[(id % OWNERS.len() as u64) as usize];
    match part {
        CommentPart::OwnerType => Val::Str(owner_type.into()),
        CommentPart::OwnerId => {
            let n = data.tables.get(owner_type).map_or(1, |t| t.spread).max(1);
            Val::Int(((id * 7) % n + 1) as i64)
        }
        // Two comments in three have no file; the others one or two.
        CommentPart::Files => {
            let n = if pick.is_multiple_of(3) {
                1 + (pick / 3) % 2
            } else {
                0
            };
            Val::List((0..n).map(|k| Val::File(id * 3 + k + 1)).collect())
        }
    }
}

impl PortalData {
    /// Timeline comments of leads, deals, contacts and companies.
    pub(crate) fn add_timeline_comments(&mut self, n: u64) {
        self.insert_lazy(TABLE, TableKind::TimelineComment, None, fields(), n);
    }

    /// Owners deleted from `table` lose their comments (as the portal deletes them).
    pub(crate) fn drop_comments_of(&mut self, table: &str, owner_ids: &[u64]) {
        if !OWNERS.contains(&table) {
            return;
        }
        let Some(t) = self.tables.get(TABLE) else {
            return;
        };
        let (Some(type_f), Some(id_f)) = (t.field("ENTITY_TYPE"), t.field("ENTITY_ID")) else {
            return;
        };
        let doomed: Vec<u64> = t
            .ids()
            .filter(|id| {
                self.value(t, *id, type_f) == Val::Str(table.into())
                    && matches!(self.value(t, *id, id_f), Val::Int(o) if owner_ids.contains(&(o as u64)))
            })
            .collect();
        if let Some(t) = self.tables.get_mut(TABLE) {
            for id in doomed {
                t.delete(id);
            }
        }
    }
}

/// `FILES` as the method prints it (the docs' answer): `{"<id>": {id, date, type, name, size,
/// image, authorId, authorName, urlPreview, urlShow, urlDownload}}`, `{}` without files;
/// `urlDownload` is the path the ground truth names.
pub(crate) fn files_json(items: &[Val], download: impl Fn(u64) -> String) -> J {
    J::Obj(
        items
            .iter()
            .filter_map(|v| match v {
                Val::File(fid) => Some(*fid),
                _ => None,
            })
            .map(|fid| {
                let url = download(fid);
                (
                    fid.to_string(),
                    J::obj([
                        ("id", J::Int(fid as i64)),
                        ("date", J::str("2024-05-03T17:19:01+03:00")),
                        ("type", J::str("image")),
                        ("name", J::Str(format!("{fid}.gif"))),
                        ("size", J::Int(43)),
                        (
                            "image",
                            J::obj([("width", J::Int(1)), ("height", J::Int(1))]),
                        ),
                        ("authorId", J::Int(1)),
                        ("authorName", J::str("Demo Admin")),
                        (
                            "urlPreview",
                            J::Str(format!(
                                "{}&width=640&height=640",
                                url.replace("&dynamic=Y", "")
                            )),
                        ),
                        ("urlShow", J::Str(url.replace("&dynamic=Y", ""))),
                        ("urlDownload", J::Str(url)),
                    ]),
                )
            })
            .collect(),
    )
}
