//! Reading files from the boot volume into page allocations, with progress for big ones.

use crate::say;
use alloc::string::String;
use alloc::vec::Vec;
use core::ptr::NonNull;
use uefi::CString16;
use uefi::boot::{self, AllocateType, MemoryType};
use uefi::proto::media::file::{File, FileAttribute, FileInfo, FileMode};

pub enum FileError {
    NoVolume,
    BadPath,
    NotFound,
    NotAFile,
    TooLarge { bytes: u64 },
    Read,
}

impl FileError {
    pub fn describe(&self) -> String {
        match self {
            FileError::NoVolume => "the boot volume cannot be opened".into(),
            FileError::BadPath => "the path is not valid UCS-2".into(),
            FileError::NotFound => "file not found".into(),
            FileError::NotAFile => "not a regular file".into(),
            FileError::TooLarge { bytes } => alloc::format!("{bytes} bytes do not fit in free memory"),
            FileError::Read => "read error".into(),
        }
    }
}

/// File contents in pages from AllocatePages: 4 KiB aligned, never freed (they live for the
/// whole session).
pub struct PageBuffer {
    ptr: NonNull<u8>,
    len: usize,
}

impl PageBuffer {
    pub fn bytes(&self) -> &'static [u8] {
        // SAFETY: the pages are never freed, and nothing else writes them after loading.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

fn open(path: &str) -> Result<uefi::proto::media::file::RegularFile, FileError> {
    let mut sfs = boot::get_image_file_system(boot::image_handle()).map_err(|_| FileError::NoVolume)?;
    let mut root = sfs.open_volume().map_err(|_| FileError::NoVolume)?;
    let name = CString16::try_from(path).map_err(|_| FileError::BadPath)?;
    let handle = root.open(&name, FileMode::Read, FileAttribute::empty()).map_err(|_| FileError::NotFound)?;
    handle.into_regular_file().ok_or(FileError::NotAFile)
}

/// Small files (the config) into a Vec.
pub fn read_small(path: &str) -> Result<Vec<u8>, FileError> {
    let mut file = open(path)?;
    let info = file.get_boxed_info::<FileInfo>().map_err(|_| FileError::Read)?;
    let mut buf = alloc::vec![0u8; info.file_size() as usize];
    let mut at = 0;
    while at < buf.len() {
        let n = file.read(&mut buf[at..]).map_err(|_| FileError::Read)?;
        if n == 0 {
            break;
        }
        at += n;
    }
    buf.truncate(at);
    Ok(buf)
}

/// Big files (models) into pages, in 1 MiB reads (aligned, so no USB DMA crosses a 64 KiB
/// boundary oddly), printing progress for files over 8 MiB.
pub fn read_pages(path: &str) -> Result<PageBuffer, FileError> {
    let mut file = open(path)?;
    let info = file.get_boxed_info::<FileInfo>().map_err(|_| FileError::Read)?;
    let size = info.file_size();
    let len = usize::try_from(size).map_err(|_| FileError::TooLarge { bytes: size })?;
    let pages = len.div_ceil(4096).max(1);
    let ptr =
        boot::allocate_pages(AllocateType::AnyPages, MemoryType::LOADER_DATA, pages).map_err(|_| FileError::TooLarge { bytes: size })?;
    // SAFETY: freshly allocated, `pages * 4096 >= len` bytes, exclusively ours.
    let buf = unsafe { core::slice::from_raw_parts_mut(ptr.as_ptr(), len) };
    const STEP: usize = 1 << 20;
    let show = len > 8 * STEP;
    let mut at = 0;
    let mut last_pct = usize::MAX;
    while at < len {
        let end = (at + STEP).min(len);
        let n = file.read(&mut buf[at..end]).map_err(|_| FileError::Read)?;
        if n == 0 {
            return Err(FileError::Read);
        }
        at += n;
        let pct = at * 100 / len;
        if show && pct / 10 != last_pct / 10 {
            say!("\r  loading {path}: {pct:3}% of {} MiB", len >> 20);
            last_pct = pct;
        }
    }
    if show {
        say!("\n");
    }
    Ok(PageBuffer { ptr, len })
}
