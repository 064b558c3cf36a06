//! Output tables: a header and rows, as the bytes of a CSV document.

/// A CSV document from a header and rows.
pub fn csv_bytes<H, R>(header: H, rows: impl IntoIterator<Item = R>) -> Vec<u8>
where
    H: IntoIterator,
    H::Item: AsRef<[u8]>,
    R: IntoIterator,
    R::Item: AsRef<[u8]>,
{
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(header).expect("writing to memory");
    for r in rows {
        w.write_record(r).expect("writing to memory");
    }
    w.into_inner().expect("writing to memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it() {
        let b = csv_bytes(["a", "b"], [["x,y".to_string(), "plain".to_string()]]);
        assert_eq!(String::from_utf8(b).unwrap(), "a,b\n\"x,y\",plain\n");
    }
}
