//! Name patterns of the configuration: `dc-*`, `*/hr/*`.

/// Case-insensitive glob (`pattern` already lower case) with `*` for any run.
pub fn glob(pattern: &str, value: &str) -> bool {
    let value = value.to_ascii_lowercase();
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == value;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !value.starts_with(first) || !value[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &value[first.len()..value.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn stars_match_any_run_and_case_is_ignored() {
        assert!(glob("dc-*", "dc-01"));
        assert!(glob("*-fin-*", "ws-fin-07"));
        assert!(!glob("dc-*", "ws-dc-01"));
        assert!(glob("srv-file-01", "SRV-FILE-01"));
        assert!(glob("*/hr/*", "/var/log/HR/payroll.json"));
        assert!(!glob("*/hr/*", "/var/log/hr"));
    }
}
