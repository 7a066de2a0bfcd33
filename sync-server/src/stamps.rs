//! A row's field stamps as the server stores them (`stamps bytea`): compact, because every push
//! writes them for every row it touches. As JSON they were about 650 bytes a patient and most
//! of the cost of writing one; this is about 130.
//!
//! Layout (version 1), integers big-endian:
//!
//! ```text
//! u8 version = 1
//! u8 device count D, then D device ids (16 bytes each)
//! u8 field count F, then per field, in name order:
//!     u8 name length, the name (UTF-8), u64 hlc, u8 device index (< D)
//! ```
//!
//! Migration 0009 wrote the same layout from the earlier JSON in SQL; the two must agree.

use kaunter_core::lww::LwwRecord;
use kaunter_protocol::http::{Stamps, WireStamp};
use uuid::Uuid;

pub const VERSION: u8 = 1;

/// Why stored stamps do not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stored stamps are malformed: {}", self.0)
    }
}

impl std::error::Error for Malformed {}

/// `stamps` in the stored layout. A row has a handful of fields and writers, so both fit a u8;
/// more is a bug upstream, refused rather than truncated.
pub fn encode(stamps: &Stamps) -> Result<Vec<u8>, Malformed> {
    encode_fields(
        || {
            stamps
                .iter()
                .map(|(name, stamp)| (name.as_str(), stamp.hlc, stamp.device_id))
        },
        stamps.len(),
    )
}

/// The stamps of a merged record's fields in the stored layout: [`encode`] without first
/// copying the record into a [`Stamps`] map (push stores every row it touches).
pub fn encode_record<V: Clone>(record: &LwwRecord<V>) -> Result<Vec<u8>, Malformed> {
    let count = record.registers().count();
    encode_fields(
        || {
            record.registers().map(|(name, register)| {
                (
                    name,
                    register.stamp.hlc.as_u64(),
                    register.stamp.device.as_uuid(),
                )
            })
        },
        count,
    )
}

/// (name, hlc, device) per field, in name order, `count` of them (`fields` is walked twice).
fn encode_fields<'a, I>(fields: impl Fn() -> I, count: usize) -> Result<Vec<u8>, Malformed>
where
    I: Iterator<Item = (&'a str, u64, Uuid)>,
{
    // A row has one or two writers: a short list beats a map.
    let mut devices: Vec<Uuid> = Vec::with_capacity(2);
    for (_, _, device) in fields() {
        if !devices.contains(&device) {
            devices.push(device);
        }
    }
    let device_count = u8::try_from(devices.len()).map_err(|_| Malformed("too many devices"))?;
    let mut out = Vec::with_capacity(3 + 16 * devices.len() + 24 * count);
    out.push(VERSION);
    out.push(device_count);
    for device in &devices {
        out.extend_from_slice(device.as_bytes());
    }
    out.push(u8::try_from(count).map_err(|_| Malformed("too many fields"))?);
    for (name, hlc, device) in fields() {
        let length = u8::try_from(name.len()).map_err(|_| Malformed("field name too long"))?;
        out.push(length);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&hlc.to_be_bytes());
        let index = devices
            .iter()
            .position(|known| *known == device)
            .and_then(|index| u8::try_from(index).ok())
            .ok_or(Malformed("device index"))?;
        out.push(index);
    }
    Ok(out)
}

/// Stamps stored by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Stamps, Malformed> {
    let mut reader = Reader(bytes);
    if reader.byte()? != VERSION {
        return Err(Malformed("unknown version"));
    }
    let device_count = usize::from(reader.byte()?);
    let mut devices = Vec::with_capacity(device_count);
    for _ in 0..device_count {
        let id: [u8; 16] = reader
            .take(16)?
            .try_into()
            .map_err(|_| Malformed("device id"))?;
        devices.push(Uuid::from_bytes(id));
    }
    let field_count = reader.byte()?;
    let mut stamps = Stamps::new();
    for _ in 0..field_count {
        let length = usize::from(reader.byte()?);
        let name = std::str::from_utf8(reader.take(length)?)
            .map_err(|_| Malformed("field name is not UTF-8"))?
            .to_owned();
        let hlc: [u8; 8] = reader.take(8)?.try_into().map_err(|_| Malformed("hlc"))?;
        let device_id = *devices
            .get(usize::from(reader.byte()?))
            .ok_or(Malformed("device index out of range"))?;
        stamps.insert(
            name,
            WireStamp {
                hlc: u64::from_be_bytes(hlc),
                device_id,
            },
        );
    }
    if !reader.0.is_empty() {
        return Err(Malformed("trailing bytes"));
    }
    Ok(stamps)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn stamp(hlc: u64, device: u128) -> WireStamp {
        WireStamp {
            hlc,
            device_id: Uuid::from_u128(device),
        }
    }

    #[test]
    fn round_trips() {
        let cases: Vec<Stamps> = vec![
            Stamps::new(),
            [("full_name".to_owned(), stamp(1, 7))].into(),
            [
                ("full_name".to_owned(), stamp(u64::MAX, 7)),
                ("phone".to_owned(), stamp(117_673_136_680_599_552, 9)),
                ("deleted".to_owned(), stamp(3, 7)),
                ("ünïcode".to_owned(), stamp(0, 1)),
            ]
            .into(),
        ];
        for stamps in cases {
            let bytes = encode(&stamps).unwrap();
            assert_eq!(decode(&bytes).unwrap(), stamps);
            // A record with these stamps encodes to the same bytes straight from its registers.
            let fields = stamps
                .keys()
                .map(|name| (name.clone(), serde_json::Value::Null))
                .collect();
            let record = kaunter_protocol::merge::record_from_parts(&fields, &stamps);
            assert_eq!(encode_record(&record).unwrap(), bytes);
        }
    }

    #[test]
    fn one_writer_is_stored_once() {
        let stamps: Stamps = ["a", "b", "c"]
            .into_iter()
            .map(|name| (name.to_owned(), stamp(5, 7)))
            .collect();
        // version, device count, one device, field count, then 3 x (1 + 1 + 8 + 1).
        assert_eq!(encode(&stamps).unwrap().len(), 2 + 16 + 1 + 3 * 11);
    }

    #[test]
    fn the_layout_is_as_documented() {
        let stamps: Stamps = [("ab".to_owned(), stamp(0x0102, 0xff))].into();
        let mut want = vec![1, 1];
        want.extend_from_slice(Uuid::from_u128(0xff).as_bytes());
        want.extend_from_slice(&[1, 2, b'a', b'b', 0, 0, 0, 0, 0, 0, 1, 2, 0]);
        assert_eq!(encode(&stamps).unwrap(), want);
    }

    #[test]
    fn damaged_bytes_are_refused_not_misread() {
        let good = encode(&[("full_name".to_owned(), stamp(1, 7))].into()).unwrap();
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad_version = good.clone();
        bad_version[0] = 2;
        assert!(decode(&bad_version).is_err());
        let mut bad_index = good.clone();
        *bad_index.last_mut().unwrap() = 1;
        assert!(decode(&bad_index).is_err());
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_err());
    }
}
