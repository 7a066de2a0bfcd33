//! Field encryption and blind indexes.
//!
//! Envelope layout (FROZEN: stored data depends on it; add a new version, never change this):
//!   byte 0      envelope version, 1
//!   bytes 1-4   key id, big-endian u32
//!   bytes 5-16  96-bit random nonce
//!   bytes 17-   AES-256-GCM ciphertext with its 16-byte tag
//! Associated data (FROZEN): `kaunter/v1|<tenant uuid>|<table>|<column>|<row id>`, so a
//! ciphertext copied to another row, column, table or business fails to open.
//!
//! Blind index (FROZEN): HMAC-SHA256 with a separate key over
//! `kaunter-bidx/v1|<tenant uuid>|<table>|<column>|<normalised value>`.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};

const ENVELOPE_VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 4 + 12;
const KEY_MATERIAL_PREFIX: &str = "kaunter-keys/v1:";

/// The desk's two keys: one encrypts fields, the other computes blind indexes.
pub struct KeyMaterial {
    key_id: u32,
    data_key: Zeroizing<[u8; 32]>,
    index_key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeyMaterial {{ key_id: {}, keys: [redacted] }}",
            self.key_id
        )
    }
}

impl KeyMaterial {
    /// Fresh random keys from the operating system's generator.
    pub fn generate() -> Result<KeyMaterial> {
        let mut data_key = Zeroizing::new([0u8; 32]);
        let mut index_key = Zeroizing::new([0u8; 32]);
        getrandom::fill(data_key.as_mut())
            .and_then(|()| getrandom::fill(index_key.as_mut()))
            .map_err(|e| StoreError::Keyring(format!("no system randomness: {e}")))?;
        Ok(KeyMaterial {
            key_id: 1,
            data_key,
            index_key,
        })
    }

    /// The form kept in the secret store.
    pub fn export(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{KEY_MATERIAL_PREFIX}{}:{}:{}",
            self.key_id,
            STANDARD_NO_PAD.encode(self.data_key.as_ref()),
            STANDARD_NO_PAD.encode(self.index_key.as_ref()),
        ))
    }

    pub fn import(text: &str) -> Result<KeyMaterial> {
        let malformed = || StoreError::Keyring("the stored key is malformed".into());
        let rest = text
            .strip_prefix(KEY_MATERIAL_PREFIX)
            .ok_or_else(malformed)?;
        let mut parts = rest.split(':');
        let key_id = parts
            .next()
            .and_then(|p| p.parse::<u32>().ok())
            .ok_or_else(malformed)?;
        let mut decode = || -> Result<Zeroizing<[u8; 32]>> {
            let bytes = Zeroizing::new(
                STANDARD_NO_PAD
                    .decode(parts.next().ok_or_else(malformed)?)
                    .map_err(|_| malformed())?,
            );
            let mut key = Zeroizing::new([0u8; 32]);
            if bytes.len() != 32 {
                return Err(malformed());
            }
            key.copy_from_slice(&bytes);
            Ok(key)
        };
        let data_key = decode()?;
        let index_key = decode()?;
        Ok(KeyMaterial {
            key_id,
            data_key,
            index_key,
        })
    }
}

/// Encrypts and decrypts fields of one business's rows.
pub struct FieldCipher {
    key_id: u32,
    aead: Aes256Gcm,
    index: BlindIndex,
    tenant: String,
}

impl fmt::Debug for FieldCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FieldCipher {{ key_id: {}, tenant: {} }}",
            self.key_id, self.tenant
        )
    }
}

/// Keyed hashes for exact-match lookup without storing plaintext.
pub struct BlindIndex {
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindIndex([redacted])")
    }
}

impl BlindIndex {
    pub fn compute(&self, tenant: &str, table: &str, column: &str, normalised: &str) -> Vec<u8> {
        // HMAC accepts keys of any length, so this cannot fail for a 32-byte key.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(self.key.as_ref()) {
            Ok(mac) => mac,
            Err(_) => unreachable_hmac(),
        };
        for part in ["kaunter-bidx/v1", tenant, table, column] {
            mac.update(part.as_bytes());
            mac.update(b"|");
        }
        mac.update(normalised.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

#[cold]
fn unreachable_hmac() -> ! {
    unreachable!("HMAC-SHA256 takes keys of any length")
}

impl FieldCipher {
    pub fn new(keys: &KeyMaterial, tenant: &str) -> FieldCipher {
        let aead = Aes256Gcm::new(keys.data_key.as_ref().into());
        FieldCipher {
            key_id: keys.key_id,
            aead,
            index: BlindIndex {
                key: keys.index_key.clone(),
            },
            tenant: tenant.to_owned(),
        }
    }

    fn aad(&self, table: &str, column: &str, row_id: &str) -> Vec<u8> {
        format!("kaunter/v1|{}|{table}|{column}|{row_id}", self.tenant).into_bytes()
    }

    pub fn encrypt(
        &self,
        table: &'static str,
        column: &'static str,
        row_id: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce)
            .map_err(|e| StoreError::Keyring(format!("no system randomness: {e}")))?;
        let aad = self.aad(table, column, row_id);
        let ciphertext = self
            .aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::Corrupt("encryption failed".into()))?;
        let mut envelope = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        envelope.push(ENVELOPE_VERSION);
        envelope.extend_from_slice(&self.key_id.to_be_bytes());
        envelope.extend_from_slice(&nonce);
        envelope.extend_from_slice(&ciphertext);
        Ok(envelope)
    }

    pub fn decrypt(
        &self,
        table: &'static str,
        column: &'static str,
        row_id: &str,
        envelope: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let tampered = || StoreError::Tampered { table, column };
        if envelope.len() < HEADER_LEN + 16 || envelope[0] != ENVELOPE_VERSION {
            return Err(tampered());
        }
        let key_id = u32::from_be_bytes([envelope[1], envelope[2], envelope[3], envelope[4]]);
        if key_id != self.key_id {
            return Err(StoreError::WrongKey);
        }
        let aad = self.aad(table, column, row_id);
        self.aead
            .decrypt(
                Nonce::from_slice(&envelope[5..HEADER_LEN]),
                Payload {
                    msg: &envelope[HEADER_LEN..],
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| tampered())
    }

    pub fn encrypt_str(
        &self,
        table: &'static str,
        column: &'static str,
        row_id: &str,
        plaintext: &str,
    ) -> Result<Vec<u8>> {
        self.encrypt(table, column, row_id, plaintext.as_bytes())
    }

    pub fn decrypt_string(
        &self,
        table: &'static str,
        column: &'static str,
        row_id: &str,
        envelope: &[u8],
    ) -> Result<String> {
        let bytes = self.decrypt(table, column, row_id, envelope)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| StoreError::Tampered { table, column })
    }

    pub fn blind_index(&self, table: &str, column: &str, normalised: &str) -> Vec<u8> {
        self.index.compute(&self.tenant, table, column, normalised)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_binding_to_place() {
        let keys = KeyMaterial::generate().unwrap();
        let cipher = FieldCipher::new(&keys, "tenant-a");
        let envelope = cipher
            .encrypt_str("patients", "full_name", "row-1", "Ali bin Abu")
            .unwrap();
        assert_eq!(envelope[0], 1);
        assert_eq!(
            cipher
                .decrypt_string("patients", "full_name", "row-1", &envelope)
                .unwrap(),
            "Ali bin Abu"
        );
        // Another row, column, table or tenant: refused.
        assert!(
            cipher
                .decrypt_string("patients", "full_name", "row-2", &envelope)
                .is_err()
        );
        assert!(
            cipher
                .decrypt_string("patients", "phone", "row-1", &envelope)
                .is_err()
        );
        assert!(
            cipher
                .decrypt_string("outbox", "full_name", "row-1", &envelope)
                .is_err()
        );
        let other_tenant = FieldCipher::new(&keys, "tenant-b");
        assert!(
            other_tenant
                .decrypt_string("patients", "full_name", "row-1", &envelope)
                .is_err()
        );
        // A flipped bit anywhere: refused.
        let mut flipped = envelope.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(
            cipher
                .decrypt_string("patients", "full_name", "row-1", &flipped)
                .is_err()
        );
        // Same plaintext twice: different ciphertexts (random nonce).
        let again = cipher
            .encrypt_str("patients", "full_name", "row-1", "Ali bin Abu")
            .unwrap();
        assert_ne!(again, envelope);
    }

    #[test]
    fn a_different_key_cannot_open_data() {
        let cipher = FieldCipher::new(&KeyMaterial::generate().unwrap(), "t");
        let stranger = FieldCipher::new(&KeyMaterial::generate().unwrap(), "t");
        let envelope = cipher
            .encrypt_str("patients", "phone", "r", "+60123456789")
            .unwrap();
        assert!(
            stranger
                .decrypt_string("patients", "phone", "r", &envelope)
                .is_err()
        );
    }

    #[test]
    fn key_material_round_trips_and_rejects_garbage() {
        let keys = KeyMaterial::generate().unwrap();
        let exported = keys.export();
        let imported = KeyMaterial::import(&exported).unwrap();
        let a = FieldCipher::new(&keys, "t");
        let b = FieldCipher::new(&imported, "t");
        let envelope = a.encrypt_str("x", "y", "z", "secret").unwrap();
        assert_eq!(
            b.decrypt_string("x", "y", "z", &envelope).unwrap(),
            "secret"
        );
        assert_eq!(a.blind_index("x", "y", "v"), b.blind_index("x", "y", "v"));
        for garbage in [
            "",
            "kaunter-keys/v1:1:abc:def",
            "other:1:AAAA:AAAA",
            "kaunter-keys/v1:x",
        ] {
            assert!(KeyMaterial::import(garbage).is_err(), "{garbage}");
        }
        assert!(!format!("{keys:?}").contains(&exported[20..30]));
    }

    #[test]
    fn blind_index_is_deterministic_and_separated() {
        let keys = KeyMaterial::generate().unwrap();
        let cipher = FieldCipher::new(&keys, "t");
        let a = cipher.blind_index("patients", "id_number", "790111105342");
        assert_eq!(
            a,
            cipher.blind_index("patients", "id_number", "790111105342")
        );
        assert_ne!(a, cipher.blind_index("patients", "phone", "790111105342"));
        assert_ne!(
            a,
            FieldCipher::new(&keys, "u").blind_index("patients", "id_number", "790111105342")
        );
        assert_eq!(a.len(), 32);
    }
}
