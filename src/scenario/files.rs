//! Files a scenario names (feeds, certificates, binary frames) and the scenario itself, read
//! with a bound: a device such as /dev/zero, or a huge file, is a clear error, never a run
//! out of memory.

use std::io::Read as _;
use std::path::Path;

/// Reads `path`, refusing one larger than `limit` bytes without reading past it (a device has
/// no size to check first).
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "{} is larger than {}: expected at most that",
            path.display(),
            bytesize::ByteSize::b(limit).display().iec()
        ));
    }
    Ok(bytes)
}
