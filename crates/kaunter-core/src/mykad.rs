//! MyKad (Malaysian identity card) numbers: YYMMDD-PB-###G. There is no checksum, so a number is
//! valid when its first six digits are a real date and its place-of-birth code is one the
//! National Registration Department issues. The last digit gives the holder's sex.

use std::fmt;

use chrono::NaiveDate;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    Male,
    Female,
}

/// A validated MyKad number, stored as its 12 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MyKad {
    digits: String,
    date_of_birth: NaiveDate,
    place_of_birth: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MyKadError {
    /// Not 12 digits once dashes and spaces are removed.
    BadLength,
    /// Contains something other than digits, dashes and spaces.
    NotDigits,
    /// YYMMDD is not a real calendar date (e.g. 31 February).
    ImpossibleDate,
    /// Digits 7-8 are not an issued place-of-birth code (00, 17-20, 69, 70, 73, 80, 81, 94-97).
    BadPlaceOfBirth,
}

impl MyKadError {
    /// A stable code for the wire and the UI.
    pub fn code(self) -> &'static str {
        match self {
            MyKadError::BadLength => "mykad_bad_length",
            MyKadError::NotDigits => "mykad_not_digits",
            MyKadError::ImpossibleDate => "mykad_impossible_date",
            MyKadError::BadPlaceOfBirth => "mykad_bad_place_of_birth",
        }
    }
}

impl fmt::Display for MyKadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MyKadError::BadLength => "A MyKad number has 12 digits, e.g. 900101-14-5678.",
            MyKadError::NotDigits => "A MyKad number has only digits (dashes are optional).",
            MyKadError::ImpossibleDate => {
                "The first six digits of a MyKad number must be a real date (YYMMDD)."
            }
            MyKadError::BadPlaceOfBirth => {
                "Digits 7-8 of this MyKad number are not a valid place-of-birth code."
            }
        })
    }
}

impl std::error::Error for MyKadError {}

/// Whether `code` is a place-of-birth code the registration department issues.
pub fn is_valid_place_of_birth(code: u8) -> bool {
    matches!(code, 1..=16 | 21..=59 | 60..=68 | 71 | 72 | 74..=79 | 82..=93 | 98 | 99)
}

impl MyKad {
    /// Parses and validates a MyKad number as typed (`900101-14-5678`, `900101145678`,
    /// `900101 14 5678`). `today` resolves the century: the holder is born on or before today,
    /// in the latest century that allows it.
    pub fn parse(input: &str, today: NaiveDate) -> Result<MyKad, MyKadError> {
        let mut digits = String::with_capacity(12);
        for c in input.trim().chars() {
            match c {
                '0'..='9' => digits.push(c),
                '-' | ' ' => {}
                _ => return Err(MyKadError::NotDigits),
            }
        }
        if digits.len() != 12 {
            return Err(MyKadError::BadLength);
        }
        let number = |range: std::ops::Range<usize>| -> u32 {
            digits[range]
                .bytes()
                .fold(0, |acc, b| acc * 10 + u32::from(b - b'0'))
        };
        let (yy, mm, dd) = (number(0..2), number(2..4), number(4..6));
        let place_of_birth = u8::try_from(number(6..8)).map_err(|_| MyKadError::BadPlaceOfBirth)?;

        // No century digit: take 20YY when that date has already happened, else 19YY.
        let yy = i32::try_from(yy).map_err(|_| MyKadError::ImpossibleDate)?;
        let date_of_birth = NaiveDate::from_ymd_opt(2000 + yy, mm, dd)
            .filter(|date| *date <= today)
            .or_else(|| NaiveDate::from_ymd_opt(1900 + yy, mm, dd))
            .ok_or(MyKadError::ImpossibleDate)?;
        if !is_valid_place_of_birth(place_of_birth) {
            return Err(MyKadError::BadPlaceOfBirth);
        }
        Ok(MyKad {
            digits,
            date_of_birth,
            place_of_birth,
        })
    }

    /// The 12 digits, the stored form.
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// `YYMMDD-PB-###G`, the printed form.
    pub fn formatted(&self) -> String {
        format_digits(&self.digits)
    }

    pub fn date_of_birth(&self) -> NaiveDate {
        self.date_of_birth
    }

    pub fn place_of_birth(&self) -> u8 {
        self.place_of_birth
    }

    /// Odd last digit: male; even: female.
    pub fn sex(&self) -> Sex {
        let last = self.digits.as_bytes().last().copied().unwrap_or(b'0');
        if (last - b'0') % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }
}

/// Formats 12 stored digits as `YYMMDD-PB-###G`; anything else is returned unchanged.
pub fn format_digits(digits: &str) -> String {
    if digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}-{}-{}", &digits[0..6], &digits[6..8], &digits[8..12])
    } else {
        digits.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn valid_numbers_give_birth_date_sex_and_normal_form() {
        let cases = [
            (
                "900101-14-5677",
                date(1990, 1, 1),
                Sex::Male,
                "900101145677",
            ),
            (
                "900101145678",
                date(1990, 1, 1),
                Sex::Female,
                "900101145678",
            ),
            (
                " 850315 10 1235 ",
                date(1985, 3, 15),
                Sex::Male,
                "850315101235",
            ),
            (
                "000229-01-0002",
                date(2000, 2, 29),
                Sex::Female,
                "000229010002",
            ),
            (
                "261125-16-0001",
                date(2026, 11, 25),
                Sex::Male,
                "261125160001",
            ),
            (
                "261126-16-0001",
                date(1926, 11, 26),
                Sex::Male,
                "261126160001",
            ),
            (
                "400815-99-1234",
                date(1940, 8, 15),
                Sex::Female,
                "400815991234",
            ),
            (
                "121212-21-1111",
                date(2012, 12, 12),
                Sex::Male,
                "121212211111",
            ),
            (
                "121212-82-1112",
                date(2012, 12, 12),
                Sex::Female,
                "121212821112",
            ),
        ];
        for (input, dob, sex, digits) in cases {
            let mykad = MyKad::parse(input, today())
                .unwrap_or_else(|e| panic!("{input} should be valid: {e}"));
            assert_eq!(mykad.date_of_birth(), dob, "{input}");
            assert_eq!(mykad.sex(), sex, "{input}");
            assert_eq!(mykad.digits(), digits, "{input}");
        }
    }

    #[test]
    fn leap_day_2005_does_not_exist() {
        // 2005 and 1905 are not leap years: 29 February is impossible in both centuries.
        assert_eq!(
            MyKad::parse("050229-10-1235", today()),
            Err(MyKadError::ImpossibleDate)
        );
    }

    #[test]
    fn every_invalid_place_of_birth_code_is_refused() {
        for code in [0u8, 17, 18, 19, 20, 69, 70, 73, 80, 81, 94, 95, 96, 97] {
            let input = format!("900101{code:02}1234");
            assert_eq!(
                MyKad::parse(&input, today()),
                Err(MyKadError::BadPlaceOfBirth),
                "code {code:02}"
            );
        }
    }

    #[test]
    fn every_valid_place_of_birth_code_is_accepted() {
        let valid: Vec<u8> = (0..=99).filter(|c| is_valid_place_of_birth(*c)).collect();
        assert_eq!(valid.len(), 100 - 14);
        for code in valid {
            let input = format!("900101{code:02}1234");
            assert!(MyKad::parse(&input, today()).is_ok(), "code {code:02}");
        }
    }

    #[test]
    fn impossible_dates_are_refused() {
        for input in [
            "901301-14-5678", // month 13
            "900001-14-5678", // month 0
            "900100-14-5678", // day 0
            "900230-14-5678", // 30 February
            "900431-14-5678", // 31 April
            "010229-14-5678", // 2001 and 1901 are not leap years
        ] {
            assert_eq!(
                MyKad::parse(input, today()),
                Err(MyKadError::ImpossibleDate),
                "{input}"
            );
        }
    }

    #[test]
    fn malformed_input_is_refused_with_its_own_reason() {
        assert_eq!(
            MyKad::parse("90010114567", today()),
            Err(MyKadError::BadLength)
        );
        assert_eq!(
            MyKad::parse("9001011456789", today()),
            Err(MyKadError::BadLength)
        );
        assert_eq!(MyKad::parse("", today()), Err(MyKadError::BadLength));
        assert_eq!(
            MyKad::parse("90010A-14-5678", today()),
            Err(MyKadError::NotDigits)
        );
        assert_eq!(
            MyKad::parse("900101/14/5678", today()),
            Err(MyKadError::NotDigits)
        );
    }

    #[test]
    fn formats_as_printed_on_the_card() {
        let mykad = MyKad::parse("900101145678", today()).unwrap();
        assert_eq!(mykad.formatted(), "900101-14-5678");
        assert_eq!(format_digits("A1234567"), "A1234567");
    }
}
