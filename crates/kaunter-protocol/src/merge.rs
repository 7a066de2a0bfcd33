//! The wire's field maps as kaunter-core's per-field LWW records, converted in one place for the
//! desk's store and the server alike: a stored row is (fields, stamps); a change offers its
//! fields at its stamp.

use kaunter_core::lww::LwwRecord;
use kaunter_core::{DeviceId, Hlc, Stamp};
use serde_json::Value;

use crate::http::{Change, Fields, Stamps, WireStamp};

pub fn stamp_from_wire(stamp: WireStamp) -> Stamp {
    Stamp::new(
        Hlc::from_u64(stamp.hlc),
        DeviceId::from_uuid(stamp.device_id),
    )
}

pub fn stamp_to_wire(stamp: Stamp) -> WireStamp {
    WireStamp {
        hlc: stamp.hlc.as_u64(),
        device_id: stamp.device.as_uuid(),
    }
}

/// A stored row as a record. A field without a stamp (which a row written by this code never
/// has) is left out, so it loses to any write.
pub fn record_from_parts(fields: &Fields, stamps: &Stamps) -> LwwRecord<Value> {
    let mut record = LwwRecord::new();
    for (name, value) in fields {
        if let Some(stamp) = stamps.get(name) {
            record.offer(name, value.clone(), stamp_from_wire(*stamp));
        }
    }
    record
}

/// A record as the (fields, stamps) pair a row stores.
pub fn record_into_parts(record: &LwwRecord<Value>) -> (Fields, Stamps) {
    let mut fields = Fields::new();
    let mut stamps = Stamps::new();
    for (name, register) in record.registers() {
        fields.insert(name.to_owned(), register.value.clone());
        stamps.insert(name.to_owned(), stamp_to_wire(register.stamp));
    }
    (fields, stamps)
}

/// Offers every field of `change` to `record`; true when any of them won.
pub fn apply_change(record: &mut LwwRecord<Value>, change: &Change) -> bool {
    let stamp = stamp_from_wire(change.stamp);
    let mut changed = false;
    for (name, value) in &change.fields {
        changed |= record.offer(name, value.clone(), stamp);
    }
    changed
}

/// A row's contribution to its branch's state digest: the first 8 bytes of SHA-256 over the row
/// id and every (field, value, stamp), fields in name order. The branch digest is the wrapping
/// sum of its rows' digests, so each side keeps it up to date by subtracting a row's old digest
/// and adding its new one, and two replicas with the same rows have the same digest whatever
/// order they got them in. FROZEN: desks and the server must compute it alike.
pub fn row_digest(row_id: uuid::Uuid, record: &LwwRecord<Value>) -> u64 {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(b"kaunter-row/v1");
    hasher.update(row_id.as_bytes());
    // Each value's compact JSON text (its `to_string`), written into one reused buffer.
    let mut value = Vec::with_capacity(64);
    for (name, register) in record.registers() {
        hasher.update((name.len() as u64).to_be_bytes());
        hasher.update(name.as_bytes());
        value.clear();
        if serde_json::to_writer(&mut value, &register.value).is_err() {
            // Writing a JSON value into memory does not fail; were it to, the text is the same.
            value = register.value.to_string().into_bytes();
        }
        hasher.update((value.len() as u64).to_be_bytes());
        hasher.update(&value);
        hasher.update(register.stamp.hlc.as_u64().to_be_bytes());
        hasher.update(register.stamp.device.as_uuid().as_bytes());
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Replaces a row's old digest with its new one in a branch digest.
pub fn update_digest(branch_digest: u64, old_row: u64, new_row: u64) -> u64 {
    branch_digest.wrapping_sub(old_row).wrapping_add(new_row)
}

/// Whether a merged record is a tombstone.
pub fn is_deleted(record: &LwwRecord<Value>) -> bool {
    record.get(crate::http::DELETED_FIELD) == Some(&Value::Bool(true))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::http::{DELETED_FIELD, Entity};

    fn change(hlc: u64, device: u128, fields: &[(&str, Value)]) -> Change {
        Change {
            entity: Entity::Patient,
            row_id: Uuid::from_u128(9),
            branch_id: Uuid::from_u128(8),
            stamp: WireStamp {
                hlc,
                device_id: Uuid::from_u128(device),
            },
            fields: fields
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone()))
                .collect(),
            recorded_at: Utc::now(),
        }
    }

    #[test]
    fn parts_round_trip_and_changes_merge_per_field() {
        let mut record = LwwRecord::new();
        assert!(apply_change(
            &mut record,
            &change(
                10,
                1,
                &[("full_name", "Siti".into()), ("phone", Value::Null)]
            )
        ));
        assert!(apply_change(
            &mut record,
            &change(12, 2, &[("phone", "+60123456789".into())])
        ));
        assert!(!apply_change(
            &mut record,
            &change(11, 1, &[("phone", Value::Null)])
        ));
        let (fields, stamps) = record_into_parts(&record);
        assert_eq!(fields["phone"], Value::from("+60123456789"));
        assert_eq!(stamps["full_name"].hlc, 10);
        assert_eq!(record_from_parts(&fields, &stamps), record);
        assert!(!is_deleted(&record));
        apply_change(&mut record, &change(13, 1, &[(DELETED_FIELD, true.into())]));
        assert!(is_deleted(&record));
    }

    #[test]
    fn branch_digests_agree_whatever_the_order_and_notice_a_difference() {
        let rows: Vec<(Uuid, LwwRecord<Value>)> = (0..5u128)
            .map(|n| {
                let mut record = LwwRecord::new();
                apply_change(
                    &mut record,
                    &change(10 + n as u64, 1, &[("full_name", format!("P{n}").into())]),
                );
                (Uuid::from_u128(n), record)
            })
            .collect();
        let forward = rows.iter().fold(0u64, |digest, (id, r)| {
            update_digest(digest, 0, row_digest(*id, r))
        });
        let backward = rows.iter().rev().fold(0u64, |digest, (id, r)| {
            update_digest(digest, 0, row_digest(*id, r))
        });
        assert_eq!(forward, backward);
        // Editing a row: take its old digest out, put the new one in.
        let (id, mut edited) = rows[2].clone();
        let old = row_digest(id, &edited);
        apply_change(
            &mut edited,
            &change(99, 2, &[("phone", "+60123456789".into())]),
        );
        let updated = update_digest(forward, old, row_digest(id, &edited));
        assert_ne!(updated, forward);
        // Same value, other stamp: a different row state, a different digest.
        let mut restamped = rows[2].1.clone();
        apply_change(
            &mut restamped,
            &change(98, 3, &[("full_name", "P2".into())]),
        );
        assert_ne!(row_digest(id, &restamped), row_digest(id, &rows[2].1));
        // Taking every row out leaves nothing.
        let emptied = rows.iter().fold(forward, |digest, (id, r)| {
            update_digest(digest, row_digest(*id, r), 0)
        });
        assert_eq!(emptied, 0);
    }

    #[test]
    fn a_row_digest_is_frozen() {
        // Worked out independently of this code (SHA-256 over the documented layout, values as
        // compact JSON with non-ASCII kept as UTF-8): desks and the server, of any version,
        // must compute exactly this.
        let mut record = LwwRecord::new();
        apply_change(
            &mut record,
            &change(
                10,
                7,
                &[("full_name", "Siti Nur\u{2019}aini \"Ah\"".into())],
            ),
        );
        apply_change(&mut record, &change(11, 7, &[("phone", Value::Null)]));
        apply_change(&mut record, &change(12, 9, &[(DELETED_FIELD, true.into())]));
        apply_change(&mut record, &change(13, 9, &[("amount", 42.into())]));
        assert_eq!(
            row_digest(Uuid::from_u128(0x1234), &record),
            0xaa72_af56_e322_d2ac
        );
    }

    #[test]
    fn the_hlc_travels_as_a_string() {
        let stamp = WireStamp {
            hlc: u64::MAX,
            device_id: Uuid::nil(),
        };
        let text = serde_json::to_string(&stamp).unwrap();
        assert!(text.contains("\"18446744073709551615\""), "{text}");
        assert_eq!(serde_json::from_str::<WireStamp>(&text).unwrap(), stamp);
    }
}
