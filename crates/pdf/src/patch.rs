//! An object the seal changes, written back as its producer wrote it except
//! for what the seal changes: every entry, item, real, string and name left
//! as it was keeps its bytes, so a validator's comparison of the revisions
//! sees only the keys the seal meant to set (lopdf would re-serialise reals
//! through f32 and re-escape strings and names).

use lopdf::Object;

use crate::syntax::{MAX_DEPTH, Reader};

/// `new` written over `original`, which `raw` is the written form of.
pub(crate) fn patched(raw: &[u8], original: &Object, new: &Object) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(raw.len() + 64);
    write_patched(&mut out, raw, original, new, 0)?;
    Ok(out)
}

fn serialised(out: &mut Vec<u8>, object: &Object) -> Result<(), String> {
    lopdf::Writer::write_object(out, object).map_err(|e| format!("writing an object: {e}"))
}

fn write_patched(
    out: &mut Vec<u8>,
    raw: &[u8],
    original: &Object,
    new: &Object,
    depth: usize,
) -> Result<(), String> {
    if original == new {
        out.extend_from_slice(raw);
        return Ok(());
    }
    if depth >= MAX_DEPTH {
        return serialised(out, new);
    }
    match (original, new) {
        (Object::Dictionary(before), Object::Dictionary(after)) => {
            let entries = Reader::new(raw, 0, false).dictionary_spans()?;
            out.extend_from_slice(b"<<");
            for entry in &entries {
                let (Ok(was), Ok(is)) = (before.get(&entry.key), after.get(&entry.key)) else {
                    // Removed by the seal.
                    continue;
                };
                out.push(b' ');
                let value = &raw[entry.value_start..entry.end];
                if was == is {
                    out.extend_from_slice(&raw[entry.key_start..entry.end]);
                } else {
                    out.extend_from_slice(&raw[entry.key_start..entry.value_start]);
                    write_patched(out, value, was, is, depth + 1)?;
                }
            }
            for (key, value) in after.iter() {
                if !before.has(key) {
                    out.push(b' ');
                    serialised(out, &Object::Name(key.clone()))?;
                    out.push(b' ');
                    serialised(out, value)?;
                }
            }
            out.extend_from_slice(b" >>");
            Ok(())
        }
        // Items appended: the array as written, then the new ones.
        (Object::Array(before), Object::Array(after))
            if after.len() > before.len() && after[..before.len()] == before[..] =>
        {
            let Some(body) = raw.strip_suffix(b"]") else {
                return serialised(out, new);
            };
            out.extend_from_slice(body);
            for item in &after[before.len()..] {
                out.push(b' ');
                serialised(out, item)?;
            }
            out.push(b']');
            Ok(())
        }
        _ => serialised(out, new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lopdf::Dictionary;

    fn read(raw: &[u8]) -> Object {
        Reader::new(raw, 0, true).value(0).unwrap()
    }

    #[test]
    fn what_is_unchanged_keeps_its_bytes_and_what_changes_is_written_anew() {
        let raw = b"<< /A 595.275591 /B (x\\(y\\)) /C [1 0 R] /D << /E 0.333333333 /F /G#20H >> /Gone 1 >>";
        let original = read(raw);
        let Object::Dictionary(mut dict) = original.clone() else {
            panic!()
        };
        dict.remove(b"Gone");
        let mut annots = dict.get(b"C").unwrap().as_array().unwrap().clone();
        annots.push(Object::Reference((9, 0)));
        dict.set("C", Object::Array(annots));
        let Object::Dictionary(mut inner) = dict.get(b"D").unwrap().clone() else {
            panic!()
        };
        inner.set("New", Object::Boolean(true));
        dict.set("D", Object::Dictionary(inner));
        dict.set("Added", Object::Integer(7));
        let out = patched(raw, &original, &Object::Dictionary(dict.clone())).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert_eq!(
            text,
            "<< /A 595.275591 /B (x\\(y\\)) /C [1 0 R 9 0 R] /D << /E 0.333333333 /F /G#20H \
             /New true >> /Added 7 >>"
        );
        // And it reads back as the dictionary the seal meant.
        let Object::Dictionary(back) = read(&out) else {
            panic!()
        };
        let mut expected = Dictionary::new();
        for (key, value) in dict.iter() {
            expected.set(key.clone(), value.clone());
        }
        assert_eq!(back, expected);
    }

    #[test]
    fn an_object_replaced_whole_is_written_anew() {
        let raw = b"[1 2 3]";
        let original = read(raw);
        let new = Object::Array(vec![Object::Integer(3)]);
        assert_eq!(patched(raw, &original, &new).unwrap(), b"[3]");
    }
}
