//! The reader's values: names, strings, numbers, keywords and references,
//! each read strictly and within the depth limit.

use super::*;

impl<'a> Reader<'a> {
    /// Any value; a number followed by `G R` reads as a reference.
    pub(crate) fn value(&mut self, depth: usize) -> Result<Object, String> {
        let start = self.at;
        match self.peek() {
            None => Err("the file ends inside a value".to_owned()),
            Some(b'<') if self.rest().starts_with(b"<<") => {
                self.dictionary(depth).map(Object::Dictionary)
            }
            Some(b'<') => self.hex_string(),
            Some(b'(') => self.literal_string(),
            Some(b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(format!("nesting too deep at {start}"));
                }
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_white();
                    match self.peek() {
                        Some(b']') => {
                            self.at += 1;
                            return Ok(if self.build {
                                Object::Array(items)
                            } else {
                                Object::Null
                            });
                        }
                        None => return Err(format!("an array at {start} is not closed")),
                        Some(_) => {
                            let item = self.value(depth + 1)?;
                            if self.build {
                                items.push(item);
                            }
                        }
                    }
                }
            }
            Some(b'/') => {
                let raw = self.raw_name()?;
                Ok(if self.build {
                    Object::Name(decode_name(raw))
                } else {
                    Object::Null
                })
            }
            Some(byte) if is_delimiter(byte) => {
                Err(format!("an unexpected {:?} at {start}", byte as char))
            }
            Some(_) => self.number_keyword_or_reference(),
        }
    }

    fn hex_string(&mut self) -> Result<Object, String> {
        let start = self.at;
        self.at += 1;
        let mut digits = Vec::new();
        while let Some(byte) = self.peek() {
            self.at += 1;
            match byte {
                b'>' => {
                    if !self.build {
                        return Ok(Object::Null);
                    }
                    // An odd count ends as if followed by 0 (§7.3.4.3).
                    if digits.len() % 2 == 1 {
                        digits.push(0);
                    }
                    let bytes = digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect();
                    return Ok(Object::String(bytes, StringFormat::Hexadecimal));
                }
                b if b.is_ascii_hexdigit() => {
                    if self.build {
                        digits.push(hex_value(b));
                    }
                }
                b if is_white(b) => {}
                _ => return Err(format!("a bad hex string at {start}")),
            }
        }
        Err(format!("a hex string at {start} is not closed"))
    }

    fn literal_string(&mut self) -> Result<Object, String> {
        let start = self.at;
        self.at += 1;
        let mut nesting = 1usize;
        let mut bytes = Vec::new();
        while let Some(byte) = self.peek() {
            self.at += 1;
            match byte {
                b'\\' => {
                    let Some(escaped) = self.peek() else { break };
                    self.at += 1;
                    let decoded = match escaped {
                        b'n' => Some(b'\n'),
                        b'r' => Some(b'\r'),
                        b't' => Some(b'\t'),
                        b'b' => Some(0x08),
                        b'f' => Some(0x0C),
                        b'0'..=b'7' => {
                            let mut value = u32::from(escaped - b'0');
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ b'0'..=b'7') => {
                                        value = value * 8 + u32::from(d - b'0');
                                        self.at += 1;
                                    }
                                    _ => break,
                                }
                            }
                            // High-order overflow is ignored (§7.3.4.2).
                            Some((value & 0xFF) as u8)
                        }
                        // A backslash before an end of line continues the line.
                        b'\r' => {
                            if self.peek() == Some(b'\n') {
                                self.at += 1;
                            }
                            None
                        }
                        b'\n' => None,
                        other => Some(other),
                    };
                    if let (true, Some(decoded)) = (self.build, decoded) {
                        bytes.push(decoded);
                    }
                }
                b'(' => {
                    nesting += 1;
                    if self.build {
                        bytes.push(byte);
                    }
                }
                b')' => {
                    nesting -= 1;
                    if nesting == 0 {
                        return Ok(if self.build {
                            Object::String(bytes, StringFormat::Literal)
                        } else {
                            Object::Null
                        });
                    }
                    if self.build {
                        bytes.push(byte);
                    }
                }
                // An end of line in a string reads as a single LF.
                b'\r' => {
                    if self.peek() == Some(b'\n') {
                        self.at += 1;
                    }
                    if self.build {
                        bytes.push(b'\n');
                    }
                }
                other => {
                    if self.build {
                        bytes.push(other);
                    }
                }
            }
        }
        Err(format!("a string at {start} is not closed"))
    }

    fn token(&mut self) -> &'a [u8] {
        let start = self.at;
        while self.peek().is_some_and(is_regular) {
            self.at += 1;
        }
        self.since(start)
    }

    /// A number, `true`, `false`, `null`, or a reference `N G R`.
    fn number_keyword_or_reference(&mut self) -> Result<Object, String> {
        let start = self.at;
        let token = self.token();
        match token {
            b"true" => return Ok(Object::Boolean(true)),
            b"false" => return Ok(Object::Boolean(false)),
            b"null" => return Ok(Object::Null),
            _ => {}
        }
        let bad = || format!("an unexpected token at {start}");
        if token.is_empty() {
            return Err(bad());
        }
        let is_integer = |t: &[u8]| {
            let digits = t.strip_prefix(b"+").or(t.strip_prefix(b"-")).unwrap_or(t);
            !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
        };
        if is_integer(token) {
            // `N G R`: two unsigned integers and R.
            if token.iter().all(u8::is_ascii_digit) {
                let after_number = self.at;
                let mut look = Reader::new(self.pdf, self.at, false);
                look.skip_white();
                let generation = look.token();
                if !generation.is_empty() && generation.iter().all(u8::is_ascii_digit) {
                    look.skip_white();
                    if look.keyword(b"R") {
                        self.at = look.at;
                        let number = decimal(token)
                            .and_then(|n| u32::try_from(n).ok())
                            .ok_or_else(|| format!("an object number out of range at {start}"))?;
                        let generation = decimal(generation)
                            .and_then(|g| u16::try_from(g).ok())
                            .ok_or_else(|| format!("a generation out of range at {start}"))?;
                        return Ok(Object::Reference((number, generation)));
                    }
                }
                self.at = after_number;
            }
            let (negative, digits) = match token[0] {
                b'-' => (true, &token[1..]),
                b'+' => (false, &token[1..]),
                _ => (false, token),
            };
            let value = decimal(digits)
                .and_then(|v| i64::try_from(v).ok())
                .ok_or_else(|| format!("an integer out of range at {start}"))?;
            return Ok(Object::Integer(if negative { -value } else { value }));
        }
        // A real: sign, digits, one point, digits; no exponent (§7.3.3).
        let unsigned = token
            .strip_prefix(b"+")
            .or(token.strip_prefix(b"-"))
            .unwrap_or(token);
        let points = unsigned.iter().filter(|b| **b == b'.').count();
        let sound = points == 1
            && unsigned.len() > 1
            && unsigned.iter().all(|b| b.is_ascii_digit() || *b == b'.');
        if !sound {
            return Err(bad());
        }
        let text = std::str::from_utf8(token).map_err(|_| bad())?;
        let value: f32 = text.parse().map_err(|_| bad())?;
        if !value.is_finite() {
            return Err(format!("a real out of range at {start}"));
        }
        Ok(Object::Real(value))
    }
}
