//! Labelled streams for measuring detectors.
//!
//! DARPA 1998 as the MIDAS authors published it (`darpa_original.csv`, alone or zipped): one
//! edge per line, `source IP,destination IP,MM/DD/YYYY-HH:MM,label`, label `-` for normal
//! traffic and the attack's name otherwise, in time order. Ticks count the minutes that had
//! edges, from 1: the authors' preprocessing numbers the distinct timestamps, so a quiet night
//! or weekend does not stretch the expected rate (the live edge streams tick the same way).
//!
//! KDD Cup 99 HTTP and SMTP as ADBench publishes them (`http.csv`, `smtp.csv`, plain or
//! gzipped): a header `f0,f1,…,label`, then one connection per line, numeric features and a
//! label `0` (normal) or `1` (attack), in the order the connections happened.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

pub use crate::midas::Ticks;

/// Most bytes read from a data set (a zip bomb stops here, with an error).
const MAX_BYTES: u64 = 8 * 1024 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read `{path}`: {reason}")]
    Io { path: String, reason: String },
    #[error("`{path}` line {line}: {reason}")]
    Line { path: String, line: u64, reason: String },
}

/// One labelled edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub source: u64,
    pub destination: u64,
    pub tick: u64,
    pub anomaly: bool,
}

/// `172.016.112.020` (zero-padded octets, as the data set writes them) as a number.
fn ipv4(s: &str) -> Option<u64> {
    let mut n = 0u64;
    let mut parts = 0;
    for p in s.split('.') {
        let octet: u8 = p.parse().ok()?;
        n = n << 8 | u64::from(octet);
        parts += 1;
    }
    (parts == 4).then_some(n)
}

/// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `06/01/1998-07:55` as minutes since the epoch.
fn minutes(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('-')?;
    let mut d = date.split('/');
    let (mo, da, yr): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (h, mi) = time.split_once(':')?;
    let (h, mi): (i64, i64) = (h.parse().ok()?, mi.parse().ok()?);
    // The published data has days past the month's end (`07/32/1998`): they roll over into
    // the next month, as the date arithmetic below does on its own.
    if !(1..=12).contains(&mo) || !(1..=40).contains(&da) || !(0..24).contains(&h) || !(0..60).contains(&mi) {
        return None;
    }
    Some(days_from_civil(yr, mo, da) * 1_440 + h * 60 + mi)
}

/// Reads one line of the DARPA stream; `ticks` numbers the minutes seen so far.
pub fn darpa_line(line: &str, ticks: &mut Ticks) -> Result<Edge, String> {
    let mut f = line.trim_end().split(',');
    let (Some(src), Some(dst), Some(time), Some(label), None) = (f.next(), f.next(), f.next(), f.next(), f.next())
    else {
        return Err("expected 4 comma-separated fields: source,destination,time,label".into());
    };
    let source = ipv4(src).ok_or_else(|| format!("`{src}` is not an IPv4 address"))?;
    let destination = ipv4(dst).ok_or_else(|| format!("`{dst}` is not an IPv4 address"))?;
    let m = minutes(time).ok_or_else(|| format!("`{time}` is not MM/DD/YYYY-HH:MM"))?;
    if label.is_empty() {
        return Err("empty label (`-` marks normal traffic)".into());
    }
    let tick = ticks.at(m);
    Ok(Edge {
        source,
        destination,
        tick,
        anomaly: label != "-",
    })
}

/// Streams the DARPA 1998 edges of `path` (CSV, or a zip holding it) to `each`; returns how
/// many. A bad line stops with its number and why.
pub fn darpa98(path: &Path, mut each: impl FnMut(Edge)) -> Result<u64, DatasetError> {
    let name = path.display().to_string();
    let io = |e: &dyn std::fmt::Display| DatasetError::Io {
        path: name.clone(),
        reason: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(|e| io(&e))?;
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("zip")) {
        let mut archive = zip::ZipArchive::new(file).map_err(|e| io(&e))?;
        let index = (0..archive.len())
            .find(|&i| archive.name_for_index(i).is_some_and(|n| n.ends_with(".csv")))
            .ok_or_else(|| io(&"the archive holds no .csv"))?;
        let entry = archive.by_index(index).map_err(|e| io(&e))?;
        lines(entry.take(MAX_BYTES), &name, &mut each)
    } else {
        lines(file.take(MAX_BYTES), &name, &mut each)
    }
}

fn lines(reader: impl Read, name: &str, each: &mut impl FnMut(Edge)) -> Result<u64, DatasetError> {
    let mut ticks = Ticks::default();
    let mut n = 0u64;
    for (i, line) in BufReader::with_capacity(1 << 20, reader).lines().enumerate() {
        let line = line.map_err(|e| DatasetError::Io {
            path: name.to_owned(),
            reason: e.to_string(),
        })?;
        if line.is_empty() {
            continue;
        }
        let edge = darpa_line(&line, &mut ticks).map_err(|reason| DatasetError::Line {
            path: name.to_owned(),
            line: i as u64 + 1,
            reason,
        })?;
        each(edge);
        n += 1;
    }
    Ok(n)
}

/// Reads one line of a labelled feature table with `features` numeric columns and a `0`/`1`
/// label last.
pub fn feature_line(line: &str, features: usize, out: &mut Vec<f64>) -> Result<bool, String> {
    out.clear();
    let mut fields = line.trim_end().split(',');
    for j in 0..features {
        let f = fields
            .next()
            .ok_or_else(|| format!("expected {} comma-separated fields, found {j}", features + 1))?;
        let v: f64 = f
            .trim()
            .parse()
            .map_err(|_| format!("field {} (`{f}`) is not a number", j + 1))?;
        if !v.is_finite() {
            return Err(format!("field {} (`{f}`) is not finite", j + 1));
        }
        out.push(v);
    }
    let label = match fields.next().map(str::trim) {
        Some("0") => false,
        Some("1") => true,
        Some(o) => return Err(format!("label `{o}` is not 0 or 1")),
        None => {
            return Err(format!(
                "expected {} comma-separated fields, found {features}",
                features + 1
            ));
        }
    };
    if fields.next().is_some() {
        return Err(format!("more than {} fields", features + 1));
    }
    Ok(label)
}

/// Streams a KDD 99 subset (`http.csv`, `smtp.csv`, or gzipped) to `each` as features and
/// label; returns how many rows and how many features each has (from the header).
pub fn kdd99(path: &Path, mut each: impl FnMut(&[f64], bool)) -> Result<(u64, usize), DatasetError> {
    let name = path.display().to_string();
    let io = |e: &dyn std::fmt::Display| DatasetError::Io {
        path: name.clone(),
        reason: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(|e| io(&e))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz")) {
        Box::new(flate2::read::GzDecoder::new(file).take(MAX_BYTES))
    } else {
        Box::new(file.take(MAX_BYTES))
    };
    let mut lines = BufReader::with_capacity(1 << 20, reader).lines();
    let header = lines.next().transpose().map_err(|e| io(&e))?.unwrap_or_default();
    let columns: Vec<&str> = header.trim_end().split(',').collect();
    if columns.len() < 2 || columns.last() != Some(&"label") {
        return Err(DatasetError::Line {
            path: name,
            line: 1,
            reason: format!(
                "expected a header `f0,…,label`, found `{}`",
                header.chars().take(80).collect::<String>()
            ),
        });
    }
    let features = columns.len() - 1;
    let mut n = 0u64;
    let mut row = Vec::with_capacity(features);
    for (i, line) in lines.enumerate() {
        let line = line.map_err(|e| io(&e))?;
        if line.is_empty() {
            continue;
        }
        let label = feature_line(&line, features, &mut row).map_err(|reason| DatasetError::Line {
            path: name.clone(),
            line: i as u64 + 2,
            reason,
        })?;
        each(&row, label);
        n += 1;
    }
    Ok((n, features))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_lines_read_and_bad_ones_say_why() {
        let mut row = Vec::new();
        assert_eq!(feature_line("-2.30,5.37,10.7,0", 3, &mut row), Ok(false));
        assert_eq!(row, [-2.30, 5.37, 10.7]);
        assert_eq!(feature_line("1,2,3,1", 3, &mut row), Ok(true));
        for (bad, why) in [
            ("1,2,0", "expected 4 comma-separated fields, found 3"),
            ("1,x,3,0", "field 2 (`x`) is not a number"),
            ("1,2,3,2", "label `2` is not 0 or 1"),
            ("1,2,3,0,9", "more than 4 fields"),
            ("1,inf,3,0", "field 2 (`inf`) is not finite"),
        ] {
            let e = feature_line(bad, 3, &mut row).err().unwrap_or_default();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn lines_read_and_bad_ones_say_why() {
        let mut first = Ticks::default();
        let e = darpa_line("172.016.112.020,192.168.001.010,06/01/1998-07:55,-", &mut first)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.source, (172 << 24) | (16 << 16) | (112 << 8) | 20);
        assert_eq!((e.tick, e.anomaly), (1, false));
        let later =
            darpa_line("1.2.3.4,5.6.7.8,06/02/1998-07:56,neptune", &mut first).unwrap_or_else(|e| panic!("{e}"));
        // The next minute with edges is the next tick, however far in time.
        assert_eq!((later.tick, later.anomaly), (2, true));
        let same = darpa_line("1.2.3.4,5.6.7.8,06/02/1998-07:56,-", &mut first).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(same.tick, 2);
        let late = darpa_line("1.2.3.4,5.6.7.8,06/01/1998-09:00,-", &mut first).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(late.tick, 2, "an older edge counts in the current tick");
        assert!(darpa_line("1.2.3,5.6.7.8,06/02/1998-07:56,-", &mut first).is_err());
        assert!(darpa_line("1.2.3.4,5.6.7.8,13/02/1998-07:56,-", &mut first).is_err());
        // `07/32` is 1 August.
        let mut f = Ticks::default();
        darpa_line("1.2.3.4,5.6.7.8,08/01/1998-00:00,-", &mut f).unwrap_or_else(|e| panic!("{e}"));
        let rolled = darpa_line("1.2.3.4,5.6.7.8,07/32/1998-00:00,-", &mut f).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rolled.tick, 1);
        assert!(darpa_line("1.2.3.4,5.6.7.8,06/02/1998-07:56", &mut first).is_err());
    }
}
