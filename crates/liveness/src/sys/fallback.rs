//! Off Linux: no kernel figures. Callers learn it from the error, never from
//! zeros.

use super::{Sample, SampleError};

pub(crate) fn sample(_fd: i32) -> Result<Sample, SampleError> {
    Err(SampleError::Unsupported)
}

pub(crate) fn abort(_fd: i32) -> bool {
    false
}

pub(crate) fn open_file_limit() -> Option<u64> {
    None
}

pub(crate) fn thread_cpu_time() -> Option<std::time::Duration> {
    None
}
