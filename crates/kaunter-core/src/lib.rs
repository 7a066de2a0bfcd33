//! Kaunter's domain core: identifiers, Malaysian identity and phone rules, patient registration
//! rules, and the sync semantics (hybrid logical clocks, per-field last-writer-wins, ledgers). Pure functions over plain data: no I/O, no clock reads (today's date is
//! an argument), no serde. Everything here is table-tested.

pub mod access;
pub mod business;
pub mod hlc;
pub mod ids;
pub mod ledger;
pub mod lww;
pub mod mykad;
pub mod patient;
pub mod phone;
pub mod rng;
pub mod search;
pub mod subscription;

pub use hlc::{ClockError, Hlc, HlcClock, Stamp};
pub use ids::{BranchId, DeviceId, PatientId, TenantId};
pub use mykad::{MyKad, MyKadError, Sex};
pub use patient::{IdType, NewPatient, PatientField, RegistrationError, RegistrationForm};
pub use phone::{Phone, PhoneError, PhoneKind};
pub use rng::SeededRng;
pub use search::SearchQuery;
pub use subscription::{Plan, Subscription};
