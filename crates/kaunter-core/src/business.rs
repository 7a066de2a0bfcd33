//! A business as it signs up: its web address (slug), industry, contact details, address, the
//! admin's e-mail and password, and the settings it starts with. [`validate_sign_up`] checks a
//! whole form at once and returns every field's problem, so the form can show them all.

use crate::phone::Phone;

/// What a business does; it picks the default roles (a clinic gets clinical ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Industry {
    Retail,
    Healthcare,
    Education,
    Logistics,
    Beauty,
}

impl Industry {
    pub const ALL: [Industry; 5] = [
        Industry::Retail,
        Industry::Healthcare,
        Industry::Education,
        Industry::Logistics,
        Industry::Beauty,
    ];

    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Industry::Retail => "RETAIL",
            Industry::Healthcare => "HEALTHCARE",
            Industry::Education => "EDUCATION",
            Industry::Logistics => "LOGISTICS",
            Industry::Beauty => "BEAUTY",
        }
    }

    pub fn parse(text: &str) -> Option<Industry> {
        Industry::ALL.into_iter().find(|i| i.as_str() == text)
    }
}

/// The language a business's screens and notices start in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// Bahasa Melayu.
    Malay,
    English,
}

impl Language {
    /// BCP 47 tag: the stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Malay => "ms",
            Language::English => "en",
        }
    }

    pub fn parse(text: &str) -> Option<Language> {
        [Language::Malay, Language::English]
            .into_iter()
            .find(|l| l.as_str() == text)
    }
}

/// Malaysia's states and federal territories, as an address names them.
pub const STATES: [&str; 16] = [
    "Johor",
    "Kedah",
    "Kelantan",
    "Melaka",
    "Negeri Sembilan",
    "Pahang",
    "Perak",
    "Perlis",
    "Pulau Pinang",
    "Sabah",
    "Sarawak",
    "Selangor",
    "Terengganu",
    "W.P. Kuala Lumpur",
    "W.P. Labuan",
    "W.P. Putrajaya",
];

/// Slugs no business may take: names of the service's own hosts and pages, and words that
/// would let a business pass for the service.
pub const RESERVED_SLUGS: &[&str] = &[
    "about",
    "account",
    "accounts",
    "admin",
    "administrator",
    "api",
    "app",
    "apps",
    "assets",
    "auth",
    "billing",
    "blog",
    "cdn",
    "dashboard",
    "dev",
    "docs",
    "download",
    "email",
    "ftp",
    "head-office",
    "help",
    "home",
    "imap",
    "kaunter",
    "login",
    "logout",
    "mail",
    "new",
    "pop",
    "register",
    "root",
    "security",
    "settings",
    "signin",
    "signup",
    "sign-up",
    "smtp",
    "staging",
    "static",
    "status",
    "support",
    "system",
    "test",
    "www",
];

/// A business's web address part: 3-63 lowercase letters, digits and hyphens, starting and
/// ending with a letter or digit (so it can be a DNS label), not reserved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

impl Slug {
    pub fn parse(input: &str) -> Result<Slug, (&'static str, &'static str)> {
        let slug = input.trim();
        if !(3..=63).contains(&slug.len()) {
            return Err(("slug_length", "Use 3 to 63 characters."));
        }
        if !slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err((
                "slug_characters",
                "Use only lowercase letters, digits and hyphens.",
            ));
        }
        if slug.starts_with('-') || slug.ends_with('-') {
            return Err((
                "slug_hyphen_edge",
                "Start and end with a letter or a digit.",
            ));
        }
        if RESERVED_SLUGS.contains(&slug) {
            return Err(("slug_reserved", "This address is reserved. Choose another."));
        }
        Ok(Slug(slug.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address, checked for shape only (whether it receives mail is for a confirmation
/// e-mail to tell). Compared without regard to case: [`Email::key`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Email, (&'static str, &'static str)> {
        let email = input.trim();
        let invalid = Err((
            "email_invalid",
            "Enter an e-mail address like name@example.com.",
        ));
        if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return invalid;
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return invalid;
        };
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
            return invalid;
        }
        Ok(Email(email.to_owned()))
    }

    /// As typed (trimmed).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form two addresses are compared in: lowercase.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// Passwords: at least 12 characters (OWASP ASVS 2.1.1), at most 128 (2.1.2), any characters,
/// not only spaces, not the e-mail address or the business's address.
pub const PASSWORD_MIN_CHARS: usize = 12;
pub const PASSWORD_MAX_CHARS: usize = 128;

pub fn check_password(password: &str, avoid: &[&str]) -> Result<(), (&'static str, &'static str)> {
    let chars = password.chars().count();
    if chars < PASSWORD_MIN_CHARS {
        return Err(("password_too_short", "Use at least 12 characters."));
    }
    if chars > PASSWORD_MAX_CHARS {
        return Err(("password_too_long", "Use at most 128 characters."));
    }
    if password.trim().is_empty() {
        return Err(("password_blank", "A password cannot be only spaces."));
    }
    let lower = password.to_lowercase();
    if avoid
        .iter()
        .any(|word| !word.is_empty() && lower.contains(&word.to_lowercase()))
    {
        return Err((
            "password_contains_identity",
            "Do not use your e-mail or the business's address in the password.",
        ));
    }
    Ok(())
}

/// A sign-up form as typed.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignUpForm<'a> {
    pub business_name: &'a str,
    pub slug: &'a str,
    /// [`Industry::as_str`].
    pub industry: &'a str,
    pub email: &'a str,
    pub phone: &'a str,
    pub address_line1: &'a str,
    pub address_line2: &'a str,
    pub postcode: &'a str,
    pub city: &'a str,
    /// One of [`STATES`].
    pub state: &'a str,
    pub branch_name: &'a str,
    pub admin_name: &'a str,
    pub admin_email: &'a str,
    pub admin_password: &'a str,
    /// [`Language::as_str`]; empty for the default (Bahasa Melayu).
    pub language: &'a str,
}

/// A field's problem: the form field, a stable code, a sentence for the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignUpError {
    pub field: &'static str,
    pub code: &'static str,
    pub message: &'static str,
}

/// A sign-up that passed every check, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidSignUp {
    pub business_name: String,
    pub slug: Slug,
    pub industry: Industry,
    pub email: Email,
    pub phone: Phone,
    pub address_line1: String,
    pub address_line2: Option<String>,
    pub postcode: String,
    pub city: String,
    pub state: &'static str,
    pub branch_name: String,
    pub admin_name: String,
    pub admin_email: Email,
    pub admin_password: String,
    pub language: Language,
}

/// Settings every business starts with.
pub const DEFAULT_TIME_ZONE: &str = "Asia/Kuala_Lumpur";
pub const DEFAULT_CURRENCY: &str = "MYR";
pub const DEFAULT_DATE_FORMAT: &str = "DD/MM/YYYY";
/// Days of full access a new business gets.
pub const TRIAL_DAYS: i64 = 7;

/// Collects every field's problem while a form is checked.
#[derive(Default)]
struct Problems(Vec<SignUpError>);

impl Problems {
    fn check<T>(
        &mut self,
        field: &'static str,
        result: Result<T, (&'static str, &'static str)>,
    ) -> Option<T> {
        result
            .map_err(|(code, message)| {
                self.0.push(SignUpError {
                    field,
                    code,
                    message,
                })
            })
            .ok()
    }

    /// Required free text of at most `max` characters, trimmed.
    fn text(&mut self, field: &'static str, value: &str, max: usize) -> Option<String> {
        let value = value.trim();
        let result = if value.is_empty() {
            Err(("required", "This is required."))
        } else if value.chars().count() > max || value.chars().any(char::is_control) {
            Err((
                "text_invalid",
                "This is too long or holds characters that cannot be stored.",
            ))
        } else {
            Ok(value.to_owned())
        };
        self.check(field, result)
    }
}

/// Checks a whole sign-up form; every problem is reported, not just the first.
pub fn validate_sign_up(form: &SignUpForm<'_>) -> Result<ValidSignUp, Vec<SignUpError>> {
    let mut problems = Problems::default();
    let p = &mut problems;
    let business_name = p.text("business_name", form.business_name, 200);
    let slug = p.check("slug", Slug::parse(form.slug));
    let industry = p.check(
        "industry",
        Industry::parse(form.industry.trim())
            .ok_or(("industry_unknown", "Choose the kind of business.")),
    );
    let email = p.check("email", Email::parse(form.email));
    let phone = p.check(
        "phone",
        Phone::parse(form.phone).map_err(|_| {
            (
                "phone_invalid",
                "Enter a Malaysian phone number, e.g. 03-2145 8899 or 012-345 6789.",
            )
        }),
    );
    let address_line1 = p.text("address_line1", form.address_line1, 200);
    let address_line2 = match form.address_line2.trim() {
        "" => Some(None),
        line => p.text("address_line2", line, 200).map(Some),
    };
    let postcode = form.postcode.trim();
    let postcode = p.check(
        "postcode",
        (postcode.len() == 5 && postcode.bytes().all(|b| b.is_ascii_digit()))
            .then(|| postcode.to_owned())
            .ok_or(("postcode_invalid", "A Malaysian postcode has 5 digits.")),
    );
    let city = p.text("city", form.city, 100);
    let state = p.check(
        "state",
        STATES
            .into_iter()
            .find(|s| *s == form.state.trim())
            .ok_or(("state_unknown", "Choose a state or federal territory.")),
    );
    let branch_name = p.text("branch_name", form.branch_name, 200);
    let admin_name = p.text("admin_name", form.admin_name, 200);
    let admin_email = p.check("admin_email", Email::parse(form.admin_email));
    let admin_password = p
        .check(
            "admin_password",
            check_password(
                form.admin_password,
                &[form.admin_email.trim(), form.slug.trim()],
            ),
        )
        .map(|()| form.admin_password.to_owned());
    let language = match form.language.trim() {
        "" => Some(Language::Malay),
        tag => p.check(
            "language",
            Language::parse(tag).ok_or(("language_unknown", "Choose Bahasa Melayu or English.")),
        ),
    };

    let valid = (|| {
        Some(ValidSignUp {
            business_name: business_name?,
            slug: slug?,
            industry: industry?,
            email: email?,
            phone: phone?,
            address_line1: address_line1?,
            address_line2: address_line2?,
            postcode: postcode?,
            city: city?,
            state: state?,
            branch_name: branch_name?,
            admin_name: admin_name?,
            admin_email: admin_email?,
            admin_password: admin_password?,
            language: language?,
        })
    })();
    match valid {
        Some(valid) if problems.0.is_empty() => Ok(valid),
        _ => Err(problems.0),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn good() -> SignUpForm<'static> {
        SignUpForm {
            business_name: "Klinik Kesihatan Aman",
            slug: "klinik-aman",
            industry: "HEALTHCARE",
            email: "pejabat@klinikaman.my",
            phone: "03-2145 8899",
            address_line1: "12, Jalan Tun Razak",
            address_line2: "",
            postcode: "50400",
            city: "Kuala Lumpur",
            state: "W.P. Kuala Lumpur",
            branch_name: "Cawangan Utama",
            admin_name: "Dr. Aminah binti Yusof",
            admin_email: "aminah@klinikaman.my",
            admin_password: "kuda merah lompat tinggi",
            language: "",
        }
    }

    fn codes(form: &SignUpForm<'_>) -> Vec<(&'static str, &'static str)> {
        match validate_sign_up(form) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(|e| (e.field, e.code)).collect(),
        }
    }

    #[test]
    fn a_good_form_is_normalised() {
        let valid = validate_sign_up(&good()).unwrap();
        assert_eq!(valid.slug.as_str(), "klinik-aman");
        assert_eq!(valid.industry, Industry::Healthcare);
        assert_eq!(valid.phone.e164(), "+60321458899");
        assert_eq!(valid.language, Language::Malay);
        assert_eq!(valid.address_line2, None);
    }

    #[test]
    fn slugs() {
        let table: &[(&str, Result<&str, &str>)] = &[
            ("abc", Ok("abc")),
            ("klinik-aman-2", Ok("klinik-aman-2")),
            (
                &"a".repeat(63),
                Ok("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            ),
            ("ab", Err("slug_length")),
            (&"a".repeat(64), Err("slug_length")),
            ("Klinik", Err("slug_characters")),
            ("klinik_aman", Err("slug_characters")),
            ("klinik aman", Err("slug_characters")),
            ("kedai-é", Err("slug_characters")),
            ("-klinik", Err("slug_hyphen_edge")),
            ("klinik-", Err("slug_hyphen_edge")),
            ("www", Err("slug_reserved")),
            ("api", Err("slug_reserved")),
            ("admin", Err("slug_reserved")),
            ("app", Err("slug_reserved")),
            ("mail", Err("slug_reserved")),
        ];
        for (input, want) in table {
            let got = Slug::parse(input);
            match want {
                Ok(slug) => assert_eq!(got.unwrap().as_str(), *slug, "{input}"),
                Err(code) => assert_eq!(got.unwrap_err().0, *code, "{input}"),
            }
        }
    }

    #[test]
    fn emails() {
        for ok in [
            "a@b.my",
            "Siti.Aminah+kaunter@Klinik-Aman.com.my",
            "x@sub.domain.org",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "plain",
            "@b.my",
            "a@",
            "a@b",
            "a@.my",
            "a@b..my",
            "a b@c.my",
            "a@-b.my",
            "a@b-.my",
            "a\u{7}b@c.my",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Email::parse("Siti@Klinik.MY").unwrap().key(),
            "siti@klinik.my"
        );
    }

    #[test]
    fn passwords() {
        let avoid = ["aminah@klinikaman.my", "klinik-aman"];
        let table: &[(&str, Option<&str>)] = &[
            ("kuda merah lompat tinggi", None),
            ("123456789012", None),
            ("short", Some("password_too_short")),
            ("12345678901", Some("password_too_short")),
            ("            ", Some("password_blank")),
            ("my klinik-aman pass", Some("password_contains_identity")),
            ("AMINAH@KLINIKAMAN.MY!", Some("password_contains_identity")),
        ];
        for (password, want) in table {
            assert_eq!(
                check_password(password, &avoid).err().map(|e| e.0),
                *want,
                "{password}"
            );
        }
        assert_eq!(
            check_password(&"x".repeat(129), &avoid).unwrap_err().0,
            "password_too_long"
        );
        // Characters, not bytes: twelve Malay-Arabic (Jawi) letters are enough.
        assert!(check_password(&"ب".repeat(12), &avoid).is_ok());
    }

    #[test]
    fn every_problem_of_a_form_is_reported_at_once() {
        let form = SignUpForm {
            business_name: " ",
            slug: "www",
            industry: "CLINIC",
            email: "nope",
            phone: "12345",
            postcode: "5040",
            state: "Selangor Darul Ehsan",
            admin_password: "short",
            language: "fr",
            ..good()
        };
        let mut got = codes(&form);
        got.sort();
        assert_eq!(
            got,
            [
                ("admin_password", "password_too_short"),
                ("business_name", "required"),
                ("email", "email_invalid"),
                ("industry", "industry_unknown"),
                ("language", "language_unknown"),
                ("phone", "phone_invalid"),
                ("postcode", "postcode_invalid"),
                ("slug", "slug_reserved"),
                ("state", "state_unknown"),
            ]
        );
    }

    #[test]
    fn every_industry_and_language_round_trips() {
        for industry in Industry::ALL {
            assert_eq!(Industry::parse(industry.as_str()), Some(industry));
        }
        for language in [Language::Malay, Language::English] {
            assert_eq!(Language::parse(language.as_str()), Some(language));
        }
        let english = SignUpForm {
            language: "en",
            address_line2: "Tingkat 3",
            ..good()
        };
        let valid = validate_sign_up(&english).unwrap();
        assert_eq!(valid.language, Language::English);
        assert_eq!(valid.address_line2.as_deref(), Some("Tingkat 3"));
    }
}
