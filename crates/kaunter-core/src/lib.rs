//! Kaunter's domain core: identifiers, Malaysian identity and phone rules, and patient
//! registration rules. Pure functions over plain data: no I/O, no clock reads (today's date is
//! an argument), no serde. Everything here is table-tested.

pub mod ids;
pub mod mykad;
pub mod patient;
pub mod phone;
pub mod search;

pub use ids::{BranchId, DeviceId, PatientId, TenantId};
pub use mykad::{MyKad, MyKadError, Sex};
pub use patient::{IdType, NewPatient, PatientField, RegistrationError, RegistrationForm};
pub use phone::{Phone, PhoneError, PhoneKind};
pub use search::SearchQuery;
