//! Checksums that tell a real identifier from a number that only looks like one: Luhn for
//! payment cards and Swedish personal numbers, ISO 13616 mod-97 for IBANs, and the national
//! identifier algorithms of the EU member states Rempart recognizes.

/// The decimal digits of `s`, ignoring spaces, dots and dashes; `None` if anything else occurs.
pub fn digits(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    for c in s.bytes() {
        match c {
            b'0'..=b'9' => out.push(c - b'0'),
            b' ' | b'-' | b'.' | b'/' => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Luhn (ISO/IEC 7812-1): payment cards, Swedish personnummer.
pub fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    !d.is_empty() && sum.is_multiple_of(10)
}

/// A payment card number: 12 to 19 digits (12 only for Maestro), a known issuer prefix, and
/// Luhn.
pub fn card(s: &str) -> bool {
    let Some(d) = digits(s) else { return false };
    if !(12..=19).contains(&d.len()) || !luhn(&d) {
        return false;
    }
    if d.len() == 12 && !matches!(d[0], 5 | 6) {
        return false;
    }
    let p2 = u32::from(d[0]) * 10 + u32::from(d[1]);
    let p4 = p2 * 100 + u32::from(d[2]) * 10 + u32::from(d[3]);
    matches!(d[0], 4) // Visa
        || (51..=55).contains(&p2) || (2221..=2720).contains(&p4) // Mastercard
        || p2 == 34 || p2 == 37 // American Express
        || p4 == 6011 || p2 == 65 || (644..=649).contains(&(p4 / 10)) // Discover
        || (3528..=3589).contains(&p4) || p4 == 1800 || p4 == 2131 // JCB
        || p2 == 36 || p2 == 38 || (300..=305).contains(&(p4 / 10)) // Diners
        || matches!(p2, 50 | 56..=58 | 60..=69) // Maestro and others
}

/// IBAN lengths by country (SWIFT IBAN registry), for the countries that issue them.
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VG", 24),
    ("XK", 20),
];

/// An IBAN: a known country, its length, and ISO 13616 mod-97 = 1. Spaces are ignored.
pub fn iban(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|b| *b != b' ').collect();
    if compact.len() < 15 || !compact.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let country = std::str::from_utf8(&compact[..2]).unwrap_or("");
    let Some((_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| *c == country) else {
        return false;
    };
    if compact.len() != *len {
        return false;
    }
    let mut rem: u32 = 0;
    for &c in compact[4..].iter().chain(&compact[..4]) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            b'a'..=b'z' => u32::from(c - b'a') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn mod97(d: &[u8]) -> u64 {
    d.iter().fold(0u64, |acc, &x| (acc * 10 + u64::from(x)) % 97)
}

fn valid_date(day: u32, month: u32) -> bool {
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

fn two(d: &[u8], at: usize) -> u32 {
    u32::from(d[at]) * 10 + u32::from(d[at + 1])
}

/// A national identifier with its country, checked by that country's algorithm.
pub fn national_id(country: &str, s: &str) -> bool {
    match country {
        "DE" => de_steuer_id(s),
        "FR" => fr_nir(s),
        "IT" => it_codice_fiscale(s),
        "ES" => es_dni_nie(s),
        "NL" => nl_bsn(s),
        "BE" => be_national_number(s),
        "PL" => pl_pesel(s),
        "AT" => at_svnr(s),
        "PT" => pt_nif(s),
        "SE" => se_personnummer(s),
        "FI" => fi_hetu(s),
        "DK" => dk_cpr(s),
        "IE" => ie_ppsn(s),
        _ => false,
    }
}

/// Germany, Steuerliche Identifikationsnummer: 11 digits, ISO 7064 MOD 11,10.
pub fn de_steuer_id(s: &str) -> bool {
    let Some(d) = digits(s) else { return false };
    if d.len() != 11 || d[0] == 0 {
        return false;
    }
    let mut product = 10u32;
    for &x in &d[..10] {
        let mut sum = (u32::from(x) + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (sum * 2) % 11;
    }
    let check = (11 - product) % 10;
    check == u32::from(d[10])
}

/// France, NIR (numéro de sécurité sociale): 13 characters and a key of 97 - (n mod 97);
/// Corsican departments 2A / 2B count as 19 / 18.
pub fn fr_nir(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| *c != ' ').collect();
    if compact.len() != 15 {
        return false;
    }
    let (body, key) = compact.split_at(13);
    let body = body.replace("2A", "19").replace("2B", "18");
    let (Some(d), Some(k)) = (digits(&body), digits(key)) else {
        return false;
    };
    if d.len() != 13 || !matches!(d[0], 1 | 2 | 3 | 7 | 8) {
        return false;
    }
    let month = two(&d, 3);
    if !((1..=12).contains(&month) || (20..=42).contains(&month) || (50..=99).contains(&month)) {
        return false;
    }
    97 - mod97(&d) == u64::from(two(&k, 0))
}

/// Italy, codice fiscale: 16 characters, a check letter over odd and even positions.
pub fn it_codice_fiscale(s: &str) -> bool {
    const ODD: [u32; 26] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
    ];
    let c: Vec<u8> = s.bytes().map(|b| b.to_ascii_uppercase()).collect();
    if c.len() != 16 || !c[..6].iter().all(u8::is_ascii_uppercase) || !c.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let value = |b: u8| -> u32 {
        if b.is_ascii_digit() {
            u32::from(b - b'0')
        } else {
            u32::from(b - b'A')
        }
    };
    let mut sum = 0;
    for (i, &b) in c[..15].iter().enumerate() {
        let v = value(b) as usize;
        sum += if i % 2 == 0 { ODD[v] } else { v as u32 };
    }
    u32::from(c[15]) == u32::from(b'A') + sum % 26
}

/// Spain, DNI (8 digits and a letter) or NIE (X, Y or Z, 7 digits and a letter), mod 23.
pub fn es_dni_nie(s: &str) -> bool {
    const LETTERS: &[u8] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    let c: Vec<u8> = s
        .bytes()
        .filter(|b| *b != b'-' && *b != b' ')
        .map(|b| b.to_ascii_uppercase())
        .collect();
    if c.len() != 9 {
        return false;
    }
    let lead = match c[0] {
        b'X' => 0,
        b'Y' => 1,
        b'Z' => 2,
        b'0'..=b'9' => u64::from(c[0] - b'0'),
        _ => return false,
    };
    let Some(rest) = digits(std::str::from_utf8(&c[1..8]).unwrap_or("x")) else {
        return false;
    };
    if rest.len() != 7 {
        return false;
    }
    let n = rest.iter().fold(lead, |acc, &x| acc * 10 + u64::from(x));
    LETTERS[(n % 23) as usize] == c[8]
}

/// Netherlands, BSN: 9 digits, the "11-proof" with weights 9..2 and -1.
pub fn nl_bsn(s: &str) -> bool {
    let Some(d) = digits(s) else { return false };
    if d.len() != 9 {
        return false;
    }
    let sum: i32 = d[..8]
        .iter()
        .enumerate()
        .map(|(i, &x)| i32::from(x) * (9 - i as i32))
        .sum::<i32>()
        - i32::from(d[8]);
    sum != 0 && sum % 11 == 0
}

/// Belgium, national register number: YYMMDD SSS CC, CC = 97 - (first nine mod 97), with a
/// leading 2 for births from 2000.
pub fn be_national_number(s: &str) -> bool {
    let Some(d) = digits(s) else { return false };
    if d.len() != 11 || two(&d, 2) > 12 {
        return false;
    }
    let check = u64::from(two(&d, 9));
    let body = &d[..9];
    let mut with2 = vec![2u8];
    with2.extend_from_slice(body);
    97 - mod97(body) == check || 97 - mod97(&with2) == check
}

/// Poland, PESEL: 11 digits, weights 1 3 7 9, a month coding the century.
pub fn pl_pesel(s: &str) -> bool {
    const W: [u32; 10] = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3];
    let Some(d) = digits(s) else { return false };
    if d.len() != 11 || !valid_date(two(&d, 4), two(&d, 2) % 20) {
        return false;
    }
    let sum: u32 = d[..10].iter().zip(W).map(|(&x, w)| u32::from(x) * w).sum();
    (10 - sum % 10) % 10 == u32::from(d[10])
}

/// Austria, social insurance number: NNNC DDMMYY, C = weighted sum mod 11.
pub fn at_svnr(s: &str) -> bool {
    const W: [u32; 10] = [3, 7, 9, 0, 5, 8, 4, 2, 1, 6];
    let Some(d) = digits(s) else { return false };
    if d.len() != 10 || d[0] == 0 || !valid_date(two(&d, 4), two(&d, 6)) {
        return false;
    }
    let sum: u32 = d.iter().zip(W).map(|(&x, w)| u32::from(x) * w).sum();
    let check = sum % 11;
    check != 10 && check == u32::from(d[3])
}

/// Portugal, NIF: 9 digits, mod 11.
pub fn pt_nif(s: &str) -> bool {
    let Some(d) = digits(s) else { return false };
    if d.len() != 9 || !matches!(d[0], 1 | 2 | 3 | 5 | 6 | 8 | 9) {
        return false;
    }
    let sum: u32 = d[..8]
        .iter()
        .enumerate()
        .map(|(i, &x)| u32::from(x) * (9 - i as u32))
        .sum();
    let r = sum % 11;
    let check = if r < 2 { 0 } else { 11 - r };
    check == u32::from(d[8])
}

/// Sweden, personnummer: (YY)YYMMDD-NNNC, Luhn over the ten-digit form.
pub fn se_personnummer(s: &str) -> bool {
    let Some(d) = digits(&s.replace('+', "-")) else {
        return false;
    };
    let d = match d.len() {
        10 => d,
        12 => d[2..].to_vec(),
        _ => return false,
    };
    valid_date(two(&d, 4) % 60, two(&d, 2)) && luhn(&d)
}

/// Finland, henkilötunnus: DDMMYY, a century sign, NNN and a check character mod 31.
pub fn fi_hetu(s: &str) -> bool {
    const CHECK: &[u8] = b"0123456789ABCDEFHJKLMNPRSTUVWXY";
    let c: Vec<u8> = s.bytes().map(|b| b.to_ascii_uppercase()).collect();
    if c.len() != 11 || !b"+-ABCDEFYXWVU".contains(&c[6]) {
        return false;
    }
    let Some(date) = digits(std::str::from_utf8(&c[..6]).unwrap_or("x")) else {
        return false;
    };
    let Some(serial) = digits(std::str::from_utf8(&c[7..10]).unwrap_or("x")) else {
        return false;
    };
    if date.len() != 6 || serial.len() != 3 || !valid_date(two(&date, 0), two(&date, 2)) {
        return false;
    }
    let n = date.iter().chain(&serial).fold(0u64, |acc, &x| acc * 10 + u64::from(x));
    CHECK[(n % 31) as usize] == c[10]
}

/// Denmark, CPR: DDMMYY-SSSS with a valid date (the mod-11 check was dropped in 2007).
pub fn dk_cpr(s: &str) -> bool {
    if s.len() != 11 || s.as_bytes()[6] != b'-' {
        return false;
    }
    let Some(d) = digits(s) else { return false };
    d.len() == 10 && valid_date(two(&d, 0), two(&d, 2))
}

/// Ireland, PPS number: 7 digits, a check letter mod 23, optionally a second letter.
pub fn ie_ppsn(s: &str) -> bool {
    const LETTERS: &[u8] = b"WABCDEFGHIJKLMNOPQRSTUV";
    let c: Vec<u8> = s.bytes().map(|b| b.to_ascii_uppercase()).collect();
    if !(8..=9).contains(&c.len()) || !c[..7].iter().all(u8::is_ascii_digit) || !c[7].is_ascii_uppercase() {
        return false;
    }
    let mut sum: u32 = c[..7]
        .iter()
        .enumerate()
        .map(|(i, &x)| u32::from(x - b'0') * (8 - i as u32))
        .sum();
    if let Some(&second) = c.get(8) {
        if !second.is_ascii_uppercase() {
            return false;
        }
        sum += 9 * LETTERS.iter().position(|&l| l == second).unwrap_or(0) as u32;
    }
    LETTERS[(sum % 23) as usize] == c[7]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_identifiers_pass_and_one_changed_digit_fails() {
        // Published specimen or textbook-valid values.
        let cases: &[(&str, &str)] = &[
            ("DE", "86095742719"),
            ("FR", "1 84 12 76 451 089 46"),
            ("IT", "RSSMRA85T10A562S"),
            ("ES", "12345678Z"),
            ("ES", "X1234567L"),
            ("NL", "111222333"),
            ("BE", "85.07.30-033.28"),
            ("PL", "44051401359"),
            ("AT", "1237 010180"),
            ("PT", "123456789"),
            ("SE", "811228-9874"),
            ("FI", "131052-308T"),
            ("DK", "070761-4285"),
            ("IE", "1234567T"),
        ];
        for (country, id) in cases {
            assert!(national_id(country, id), "{country} {id}");
        }
        for (country, id) in cases.iter().filter(|(c, _)| *c != "DK") {
            // Change the second digit.
            let at = id
                .char_indices()
                .filter(|(_, c)| c.is_ascii_digit())
                .nth(1)
                .map(|(i, _)| i);
            let changed: String = id
                .char_indices()
                .map(|(i, ch)| {
                    if Some(i) == at {
                        char::from(b'0' + (ch as u8 - b'0' + 1) % 10)
                    } else {
                        ch
                    }
                })
                .collect();
            assert!(!national_id(country, &changed), "{country} {changed}");
        }
    }

    #[test]
    fn ibans_and_cards() {
        assert!(iban("DE89 3704 0044 0532 0130 00"));
        assert!(iban("FR1420041010050500013M02606"));
        assert!(iban("GB82WEST12345698765432"));
        assert!(!iban("DE89 3704 0044 0532 0130 01"));
        assert!(!iban("DE89 3704 0044 0532 0130"), "wrong length");
        assert!(card("4111 1111 1111 1111"));
        assert!(card("5500-0000-0000-0004"));
        assert!(card("378282246310005"));
        assert!(!card("4111 1111 1111 1112"));
        assert!(!card("1234567812345670"), "Luhn-valid but no issuer");
    }
}
