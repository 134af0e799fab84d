//! Readers with a ceiling: decompression that stops, with a clear error, at a cap.

use std::io::{self, Read};

/// A reader that fails, with a clear message, once more than `cap` bytes came out of it.
#[derive(Debug)]
pub struct Capped<R> {
    inner: R,
    cap: u64,
    read: u64,
}

impl<R> Capped<R> {
    pub fn new(inner: R, cap: u64) -> Self {
        Capped { inner, cap, read: 0 }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read >= self.cap {
            // Probe for one more byte: exactly at the cap is fine.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    io::ErrorKind::FileTooLarge,
                    format!(
                        "decompressed data exceeds the cap of {} bytes (possible decompression bomb)",
                        self.cap
                    ),
                )),
            };
        }
        let room = usize::try_from(self.cap - self.read)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..room])?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Reads at most `cap + 1` bytes, so that the caller can tell "exactly at the cap" from "over".
#[allow(clippy::disallowed_methods, reason = "the read is bounded by `take`")]
pub fn read_capped(reader: impl Read, cap: u64, into: &mut Vec<u8>) -> io::Result<usize> {
    reader.take(cap.saturating_add(1)).read_to_end(into)
}

/// Inflates a gzip body held in memory, refusing to produce more than `cap` bytes.
pub fn gunzip(bytes: &[u8], cap: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    read_capped(flate2::read::MultiGzDecoder::new(bytes), cap, &mut out)?;
    if out.len() as u64 > cap {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("decompressed data exceeds the cap of {cap} bytes (possible decompression bomb)"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn inflates_within_the_cap_and_refuses_beyond_it() {
        let body = gz(&vec![b'a'; 10_000]);
        assert_eq!(gunzip(&body, 10_000).unwrap().len(), 10_000);
        let err = gunzip(&body, 9_999).unwrap_err();
        assert!(err.to_string().contains("exceeds the cap of 9999 bytes"), "{err}");
        assert!(gunzip(b"not gzip", 100).is_err());
    }
}
