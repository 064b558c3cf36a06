//! Provider API response pages as they are saved (one page, an array of
//! pages, or one page per line), and how each page links to the next, so
//! that a bill cut short by a lost page is said so.

use serde::de::DeserializeOwned;

use crate::error::{Error, Location, Result};

/// Reads API response pages: one page, a JSON array of pages, or pages one
/// after another (JSON lines). `what` names the format and `shape` shows it
/// in the error when the file is something else.
pub(super) fn read_pages<T: DeserializeOwned>(
    url: &str,
    text: &str,
    what: &str,
    shape: &str,
) -> Result<Vec<T>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let parsed: serde_json::Result<Vec<T>> = if text.trim_start().starts_with('[') {
        serde_json::from_str(text)
    } else {
        serde_json::Deserializer::from_str(text)
            .into_iter::<T>()
            .collect()
    };
    let hint = format!(
        "{what} look like {shape}: one page, an array of pages or one page per line; \
         or set `format` in the policy"
    );
    match parsed {
        Ok(pages) if pages.is_empty() => Err(Error::input(
            Location::file(url),
            format!("the file holds no {what}"),
        )
        .with_hint(hint)),
        Ok(pages) => Ok(pages),
        Err(e) => {
            let at = Location {
                uri: url.to_string(),
                row: Some(e.line() as u64),
                column: Some(e.column().to_string()),
            };
            if e.is_syntax() || e.is_eof() {
                return Err(Error::input(at, format!("not valid JSON: {e}")).with_hint(hint));
            }
            Err(Error::input(
                at,
                format!("not {what}: {e}; found {}", json_keys_found(text)),
            )
            .with_hint(hint))
        }
    }
}

/// How one API page links to the next: OpenAI's and Anthropic's pages both
/// say `has_more` and give a `next_page` cursor, and the next page's first
/// bucket starts where this page's last bucket ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageLink {
    /// The page's place among the file's pages, from 1.
    pub page: usize,
    pub has_more: bool,
    pub next_page: Option<String>,
    /// The first bucket's start and the last bucket's end, as written
    /// (unix seconds or RFC 3339).
    pub first_start: Option<String>,
    pub last_end: Option<String>,
}

/// The links of every page of a text [`read_pages`] read; values that are
/// no page are skipped (the adapter has judged them).
pub(super) fn page_links(text: &str) -> Vec<PageLink> {
    use serde_json::Value;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut pages: Vec<Value> = Vec::new();
    for v in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        match v {
            Ok(Value::Array(items)) => pages.extend(items),
            Ok(v) => pages.push(v),
            Err(_) => break,
        }
    }
    let time = |b: &Value, keys: [&str; 2]| {
        keys.iter().find_map(|k| match b.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
    };
    pages
        .iter()
        .enumerate()
        .filter(|(_, p)| p.get("data").is_some_and(Value::is_array))
        .map(|(i, p)| {
            let data = p.get("data").and_then(Value::as_array);
            PageLink {
                page: i + 1,
                has_more: p.get("has_more").and_then(Value::as_bool).unwrap_or(false),
                next_page: p
                    .get("next_page")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                first_start: data
                    .and_then(|d| d.first())
                    .and_then(|b| time(b, ["start_time", "starting_at"])),
                last_end: data
                    .and_then(|d| d.last())
                    .and_then(|b| time(b, ["end_time", "ending_at"])),
            }
        })
        .collect()
}

/// The keys of the first JSON value in a text (two levels deep), for
/// messages.
fn json_keys_found(text: &str) -> String {
    let first = serde_json::Deserializer::from_str(text)
        .into_iter::<serde_json::Value>()
        .next()
        .and_then(Result::ok);
    let mut keys: Vec<String> = Vec::new();
    fn walk(v: &serde_json::Value, keys: &mut Vec<String>, depth: usize) {
        match v {
            serde_json::Value::Object(m) if depth < 3 => {
                for (k, x) in m {
                    if !keys.contains(k) {
                        keys.push(k.clone());
                    }
                    walk(x, keys, depth + 1);
                }
            }
            serde_json::Value::Array(a) if depth < 3 => {
                if let Some(x) = a.first() {
                    walk(x, keys, depth);
                }
            }
            _ => {}
        }
    }
    if let Some(v) = &first {
        walk(v, &mut keys, 0);
    }
    if keys.is_empty() {
        return "no keys".to_string();
    }
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
