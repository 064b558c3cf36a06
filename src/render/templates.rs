//! Where every template comes from: a file of the policy's templates folder
//! when it has one, else the built-in of that name. HTML and PDF look
//! their files up here alone, so an override means the same for both, and
//! a folder the store cannot read is an error, never a silent fallback.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::context::Context;
use crate::error::Result;
use crate::load::store::{Store, join, utf8_text};

/// The built-in templates, by the name an override takes.
const BUILTIN: [(&str, &str); 12] = [
    (
        "invoice.html.hbs",
        include_str!("../../templates/invoice.html.hbs"),
    ),
    (
        "summary.html.hbs",
        include_str!("../../templates/summary.html.hbs"),
    ),
    (
        "style.css.hbs",
        include_str!("../../templates/style.css.hbs"),
    ),
    ("whatif.js", include_str!("../../templates/whatif.js")),
    (
        "questions.html.hbs",
        include_str!("../../templates/questions.html.hbs"),
    ),
    (
        "note.html.hbs",
        include_str!("../../templates/note.html.hbs"),
    ),
    (
        "compare.html.hbs",
        include_str!("../../templates/compare.html.hbs"),
    ),
    ("invoice.typ", include_str!("../../templates/invoice.typ")),
    ("note.typ", include_str!("../../templates/note.typ")),
    ("summary.typ", include_str!("../../templates/summary.typ")),
    ("common.typ", include_str!("../../templates/common.typ")),
    ("brand.typ", include_str!("../../templates/brand.typ")),
];

/// A template file as found.
#[derive(Debug, Clone)]
pub struct TemplateFile {
    /// Where it was read (`templates/<name>` for a built-in).
    pub uri: String,
    pub bytes: Arc<[u8]>,
}

/// The templates of a run: the built-ins, and the policy's folder.
#[derive(Debug)]
pub struct Templates {
    store: Store,
    dir: Option<String>,
    /// Files looked up so far, found or not (`None`), by relative path.
    found: Mutex<HashMap<String, Option<TemplateFile>>>,
}

impl Templates {
    /// The templates of `dir` over the built-ins. Each template a document
    /// is made from is looked up now, so a folder the store cannot read
    /// stops the run before anything is rendered.
    pub fn load(ctx: &Context, dir: Option<&str>) -> Result<Templates> {
        let templates = Templates {
            store: ctx.store.clone(),
            dir: dir.map(str::to_string),
            found: Mutex::new(HashMap::new()),
        };
        for (name, _) in BUILTIN {
            templates.file(name)?;
        }
        Ok(templates)
    }

    /// `rel` (a path inside the templates folder): the override when the
    /// folder has one, else the built-in, else `None`.
    pub fn file(&self, rel: &str) -> Result<Option<TemplateFile>> {
        if let Some(f) = self.found.lock().expect("templates lock").get(rel) {
            return Ok(f.clone());
        }
        let file = match self.override_of(rel)? {
            Some(f) => Some(f),
            None => BUILTIN
                .iter()
                .find(|(name, _)| *name == rel)
                .map(|(name, text)| TemplateFile {
                    uri: format!("templates/{name}"),
                    bytes: Arc::from(text.as_bytes()),
                }),
        };
        self.found
            .lock()
            .expect("templates lock")
            .insert(rel.to_string(), file.clone());
        Ok(file)
    }

    /// The text of a built-in template or its override; its URI with it.
    pub fn text(&self, name: &str) -> Result<(String, String)> {
        let Some(f) = self.file(name)? else {
            unreachable!("`{name}` is a built-in template")
        };
        Ok((f.uri.clone(), utf8_text(&f.uri, &f.bytes)?))
    }

    fn override_of(&self, rel: &str) -> Result<Option<TemplateFile>> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let uri = join(dir, rel);
        if !self.store.try_exists(&uri)? {
            return Ok(None);
        }
        let bytes = self.store.read(&uri)?;
        Ok(Some(TemplateFile { uri, bytes }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_replaces_the_builtin_of_its_name_only() {
        let store = Store::new();
        store.put_memory("brand/brand.typ", b"#let accent = red".to_vec());
        let ctx = Context::new(store);
        let t = Templates::load(&ctx, Some("memory://brand")).unwrap();
        assert_eq!(
            t.file("brand.typ").unwrap().unwrap().uri,
            "memory://brand/brand.typ"
        );
        assert_eq!(
            t.file("invoice.typ").unwrap().unwrap().uri,
            "templates/invoice.typ"
        );
        assert!(t.file("logo.png").unwrap().is_none());
    }
}
