//! What a person may do: permissions (stable strings the server and the desk check) and the
//! roles a business starts with, by industry.
//!
//! Every business gets ADMIN, MANAGER, STAFF and VIEWER; a clinic also Doctor, Nurse,
//! Receptionist and Accountant. Only clinical roles read clinical fields; STAFF cannot refund or
//! void on their own; VIEWER writes nothing.

use crate::business::Industry;

/// One thing a role allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    PatientsRead,
    PatientsWrite,
    ClinicalRead,
    ClinicalWrite,
    BookingsRead,
    BookingsWrite,
    SalesRead,
    SalesWrite,
    /// Refunds and voids: STAFF need a manager's approval for these.
    SalesRefund,
    ReportsRead,
    ConflictsResolve,
    DevicesManage,
    BranchesManage,
    UsersManage,
    SettingsManage,
    /// Opening a patient record outside one's role in an emergency: allowed, logged, flagged.
    BreakGlass,
    /// Adding and changing the tenant-wide catalogue of products and services.
    CatalogueManage,
    /// Reviewing emergency openings of clinical records (whether each was justified).
    AccessReview,
}

impl Permission {
    pub const ALL: [Permission; 18] = [
        Permission::PatientsRead,
        Permission::PatientsWrite,
        Permission::ClinicalRead,
        Permission::ClinicalWrite,
        Permission::BookingsRead,
        Permission::BookingsWrite,
        Permission::SalesRead,
        Permission::SalesWrite,
        Permission::SalesRefund,
        Permission::ReportsRead,
        Permission::ConflictsResolve,
        Permission::DevicesManage,
        Permission::BranchesManage,
        Permission::UsersManage,
        Permission::SettingsManage,
        Permission::BreakGlass,
        Permission::CatalogueManage,
        Permission::AccessReview,
    ];

    /// The stored spelling, `area.action`. FROZEN: rows in `role_permissions` hold it.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::PatientsRead => "patients.read",
            Permission::PatientsWrite => "patients.write",
            Permission::ClinicalRead => "clinical.read",
            Permission::ClinicalWrite => "clinical.write",
            Permission::BookingsRead => "bookings.read",
            Permission::BookingsWrite => "bookings.write",
            Permission::SalesRead => "sales.read",
            Permission::SalesWrite => "sales.write",
            Permission::SalesRefund => "sales.refund",
            Permission::ReportsRead => "reports.read",
            Permission::ConflictsResolve => "conflicts.resolve",
            Permission::DevicesManage => "devices.manage",
            Permission::BranchesManage => "branches.manage",
            Permission::UsersManage => "users.manage",
            Permission::SettingsManage => "settings.manage",
            Permission::BreakGlass => "clinical.break_glass",
            Permission::CatalogueManage => "catalogue.manage",
            Permission::AccessReview => "access.review",
        }
    }

    pub fn parse(text: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// Whether the permission changes anything (a VIEWER holds none of these).
    pub fn writes(self) -> bool {
        !matches!(
            self,
            Permission::PatientsRead
                | Permission::ClinicalRead
                | Permission::BookingsRead
                | Permission::SalesRead
                | Permission::ReportsRead
        )
    }
}

/// A role a business starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleTemplate {
    pub name: &'static str,
    pub permissions: Vec<Permission>,
}

/// The name of the role the person who signs a business up gets.
pub const ADMIN: &str = "ADMIN";

/// The roles a new business of `industry` gets.
pub fn default_roles(industry: Industry) -> Vec<RoleTemplate> {
    use Permission::*;
    let clinic = industry == Industry::Healthcare;
    let everything: Vec<Permission> = Permission::ALL
        .into_iter()
        // Outside a clinic there are no clinical records to open.
        .filter(|p| {
            clinic || !matches!(p, ClinicalRead | ClinicalWrite | BreakGlass | AccessReview)
        })
        .collect();
    let daily = [
        PatientsRead,
        PatientsWrite,
        BookingsRead,
        BookingsWrite,
        SalesRead,
        SalesWrite,
    ];
    let reading = [PatientsRead, BookingsRead, SalesRead, ReportsRead];
    let mut roles = vec![
        RoleTemplate {
            name: ADMIN,
            permissions: everything.clone(),
        },
        RoleTemplate {
            name: "MANAGER",
            permissions: everything
                .iter()
                .copied()
                .filter(|p| !matches!(p, UsersManage | SettingsManage | AccessReview))
                .collect(),
        },
        RoleTemplate {
            name: "STAFF",
            permissions: daily.to_vec(),
        },
        RoleTemplate {
            name: "VIEWER",
            permissions: reading.to_vec(),
        },
    ];
    if clinic {
        let with = |extra: &[Permission]| {
            let mut permissions = daily.to_vec();
            permissions.extend_from_slice(extra);
            permissions
        };
        roles.extend([
            RoleTemplate {
                name: "Doctor",
                permissions: with(&[ClinicalRead, ClinicalWrite, ConflictsResolve]),
            },
            RoleTemplate {
                name: "Nurse",
                permissions: with(&[ClinicalRead, ClinicalWrite]),
            },
            RoleTemplate {
                name: "Receptionist",
                permissions: with(&[ConflictsResolve, BreakGlass]),
            },
            RoleTemplate {
                name: "Accountant",
                permissions: vec![SalesRead, SalesRefund, ReportsRead],
            },
        ]);
    }
    for role in &mut roles {
        role.permissions.sort();
        role.permissions.dedup();
    }
    roles
}

/// Where a person stands in their business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserStatus {
    /// Invited, has not chosen a password yet.
    Pending,
    /// May log in.
    Active,
    /// Away for a while (leave, a season's staff): cannot log in; set back to ACTIVE on return.
    Inactive,
    /// Blocked (left the business, or a withdrawn invitation): cannot log in.
    Disabled,
}

impl UserStatus {
    pub const ALL: [UserStatus; 4] = [
        UserStatus::Pending,
        UserStatus::Active,
        UserStatus::Inactive,
        UserStatus::Disabled,
    ];

    /// The stored spelling. FROZEN: the `users.status` column check holds it.
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Pending => "PENDING",
            UserStatus::Active => "ACTIVE",
            UserStatus::Inactive => "INACTIVE",
            UserStatus::Disabled => "DISABLED",
        }
    }

    pub fn parse(text: &str) -> Option<UserStatus> {
        UserStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Why head office may not move a person from one status to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChangeRefused {
    /// Nobody is set PENDING by hand: it is what an invitation makes.
    PendingIsForInvitations,
    /// An invited person becomes ACTIVE by accepting the invitation (choosing a password).
    NotYetAccepted,
    /// An invited person is either waited for or withdrawn (DISABLED), not set away.
    PendingCannotBeInactive,
    /// A person does not change their own status (they could lock themselves out).
    OwnStatus,
}

impl StatusChangeRefused {
    pub fn code(self) -> &'static str {
        match self {
            StatusChangeRefused::PendingIsForInvitations => "status_not_settable",
            StatusChangeRefused::NotYetAccepted => "invitation_not_accepted",
            StatusChangeRefused::PendingCannotBeInactive => "status_not_settable",
            StatusChangeRefused::OwnStatus => "own_status",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            StatusChangeRefused::PendingIsForInvitations => {
                "A person is PENDING only while an invitation waits; choose ACTIVE, INACTIVE or DISABLED."
            }
            StatusChangeRefused::NotYetAccepted => {
                "This person has not accepted the invitation yet; they become ACTIVE when they choose a password."
            }
            StatusChangeRefused::PendingCannotBeInactive => {
                "An invitation is either waited for or withdrawn (DISABLED)."
            }
            StatusChangeRefused::OwnStatus => {
                "You cannot change your own status; ask another administrator."
            }
        }
    }
}

/// Whether head office may set a person from `from` to `to` (`own`: the person is the one
/// asking). Setting the status a person already has is allowed and changes nothing. Whether
/// the business keeps an active ADMIN is checked against the stored rows, not here.
pub fn check_status_change(
    from: UserStatus,
    to: UserStatus,
    own: bool,
) -> Result<(), StatusChangeRefused> {
    use UserStatus::*;
    if own {
        return Err(StatusChangeRefused::OwnStatus);
    }
    match (from, to) {
        (_, Pending) if from != Pending => Err(StatusChangeRefused::PendingIsForInvitations),
        (Pending, Active) => Err(StatusChangeRefused::NotYetAccepted),
        (Pending, Inactive) => Err(StatusChangeRefused::PendingCannotBeInactive),
        _ => Ok(()),
    }
}

/// A desk PIN: exactly six digits, not one digit repeated and not a run up or down (123456,
/// 987654): those are the first a person at someone else's till would try.
pub const PIN_DIGITS: usize = 6;

pub fn check_pin(pin: &str) -> Result<(), (&'static str, &'static str)> {
    let digits: Vec<u8> = pin.bytes().collect();
    if digits.len() != PIN_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return Err(("pin_invalid", "A desk PIN is exactly six digits."));
    }
    let steps: Vec<i16> = digits
        .windows(2)
        .map(|pair| i16::from(pair[1]) - i16::from(pair[0]))
        .collect();
    let constant_step = steps.iter().all(|step| *step == steps[0]);
    if constant_step && matches!(steps[0], -1..=1) {
        return Err((
            "pin_too_simple",
            "Choose a PIN that is not one digit repeated or a run like 123456.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use Permission::*;

    fn role(industry: Industry, name: &str) -> RoleTemplate {
        default_roles(industry)
            .into_iter()
            .find(|r| r.name == name)
            .unwrap()
    }

    #[test]
    fn spellings_round_trip_and_match_the_column_check() {
        for permission in Permission::ALL {
            let text = permission.as_str();
            assert_eq!(Permission::parse(text), Some(permission));
            // migrations/0010: permission ~ '^[a-z_]+\.[a-z_]+$'
            let (area, action) = text.split_once('.').unwrap();
            for part in [area, action] {
                assert!(
                    !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                );
            }
        }
    }

    #[test]
    fn every_business_gets_the_four_roles_and_a_clinic_four_more() {
        for industry in Industry::ALL {
            let names: Vec<&str> = default_roles(industry).iter().map(|r| r.name).collect();
            if industry == Industry::Healthcare {
                assert_eq!(
                    names,
                    [
                        "ADMIN",
                        "MANAGER",
                        "STAFF",
                        "VIEWER",
                        "Doctor",
                        "Nurse",
                        "Receptionist",
                        "Accountant"
                    ]
                );
            } else {
                assert_eq!(names, ["ADMIN", "MANAGER", "STAFF", "VIEWER"]);
            }
        }
    }

    #[test]
    fn the_rules_the_issue_names() {
        for industry in Industry::ALL {
            // A VIEWER cannot write.
            assert!(
                role(industry, "VIEWER")
                    .permissions
                    .iter()
                    .all(|p| !p.writes())
            );
            // STAFF cannot refund or void on their own.
            assert!(!role(industry, "STAFF").permissions.contains(&SalesRefund));
            // Only ADMIN manages users and settings.
            for name in ["MANAGER", "STAFF", "VIEWER"] {
                let permissions = role(industry, name).permissions;
                assert!(!permissions.contains(&UsersManage), "{name}");
                assert!(!permissions.contains(&SettingsManage), "{name}");
            }
            assert!(role(industry, ADMIN).permissions.contains(&UsersManage));
        }
        // Only a clinic's ADMIN reviews emergency openings of clinical records.
        for role in default_roles(Industry::Healthcare) {
            assert_eq!(
                role.permissions.contains(&AccessReview),
                role.name == ADMIN,
                "{}",
                role.name
            );
        }
        // Only clinical roles read clinical fields.
        for role in default_roles(Industry::Healthcare) {
            let clinical = role.permissions.contains(&ClinicalRead);
            let expected = matches!(role.name, "ADMIN" | "MANAGER" | "Doctor" | "Nurse");
            assert_eq!(clinical, expected, "{}", role.name);
        }
        // No clinical permission outside a clinic.
        for industry in Industry::ALL
            .into_iter()
            .filter(|i| *i != Industry::Healthcare)
        {
            for role in default_roles(industry) {
                assert!(
                    !role.permissions.iter().any(|p| matches!(
                        p,
                        ClinicalRead | ClinicalWrite | BreakGlass | AccessReview
                    )),
                    "{industry:?} {}",
                    role.name
                );
            }
        }
    }
    #[test]
    fn status_changes_head_office_may_make() {
        use UserStatus::*;
        // (from, to, own, outcome)
        let table: &[(
            UserStatus,
            UserStatus,
            bool,
            Result<(), StatusChangeRefused>,
        )] = &[
            (Active, Inactive, false, Ok(())),
            (Active, Disabled, false, Ok(())),
            (Inactive, Active, false, Ok(())),
            (Disabled, Active, false, Ok(())),
            (Disabled, Inactive, false, Ok(())),
            (Active, Active, false, Ok(())),
            (Pending, Disabled, false, Ok(())),
            (Pending, Pending, false, Ok(())),
            (
                Pending,
                Active,
                false,
                Err(StatusChangeRefused::NotYetAccepted),
            ),
            (
                Pending,
                Inactive,
                false,
                Err(StatusChangeRefused::PendingCannotBeInactive),
            ),
            (
                Active,
                Pending,
                false,
                Err(StatusChangeRefused::PendingIsForInvitations),
            ),
            (
                Disabled,
                Pending,
                false,
                Err(StatusChangeRefused::PendingIsForInvitations),
            ),
            (Active, Disabled, true, Err(StatusChangeRefused::OwnStatus)),
            (Active, Active, true, Err(StatusChangeRefused::OwnStatus)),
        ];
        for (from, to, own, want) in table {
            assert_eq!(
                check_status_change(*from, *to, *own),
                *want,
                "{from:?} -> {to:?} own {own}"
            );
        }
        for status in UserStatus::ALL {
            assert_eq!(UserStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(UserStatus::parse("active"), None);
    }
    #[test]
    fn desk_pins() {
        for good in ["472913", "000100", "135790", "246802"] {
            assert_eq!(check_pin(good), Ok(()), "{good}");
        }
        for (bad, code) in [
            ("12345", "pin_invalid"),
            ("1234567", "pin_invalid"),
            ("12345a", "pin_invalid"),
            ("", "pin_invalid"),
            ("١٢٣٤٥٦", "pin_invalid"),
            ("000000", "pin_too_simple"),
            ("123456", "pin_too_simple"),
            ("987654", "pin_too_simple"),
            ("777777", "pin_too_simple"),
        ] {
            assert_eq!(check_pin(bad).map_err(|(c, _)| c), Err(code), "{bad}");
        }
    }
}
