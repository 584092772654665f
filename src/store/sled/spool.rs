//! Message bodies, kept outside sled in append-only segment files.
//!
//! Why: sled keeps values inside its tree nodes and rewrites whole nodes as they split
//! and consolidate; with 4 KB bodies in a tree, and even with only a small pointer per
//! body in a tree of its own, sled's work per message dominated the server's CPU
//! (measured in issue 4). Here a body is written once, with `pwrite`, at an offset
//! reserved under a short lock, and its [`BodyLocation`] is kept in the `bodies` tree
//! that is written anyway: no sled operation of its own.
//!
//! Durability follows the store's rule (nothing acknowledged before `Store::flush`): a
//! flush first `fdatasync`s every segment written since the last flush, then flushes
//! sled, so a durable record never points at bytes that are not. sled may also flush by
//! itself in the background, so after a power loss the record of a message that was
//! never acknowledged can point at bytes that never reached the disk; every spool record
//! carries its message id, length and CRC-32, and a read that does not match says so
//! instead of sending garbage.
//!
//! Space: a segment is closed at [`SEGMENT_BYTES`]. The spool knows the live bodies of
//! each segment (rebuilt at open from the open messages). A closed segment with none is
//! let go after the next flush, so the record writes that released them are durable
//! first. Up to [`SPARES`] such segments are kept as spare files and renamed into place
//! as the next new segments, as PostgreSQL recycles WAL files: writing over a file's
//! cached, allocated pages costs the kernel far less than growing a new file and later
//! evicting a deleted one (together ~6% of the server's CPU per message in the delivery
//! benchmark). Stale bytes in a recycled segment are never read: records are found only
//! through the locations in message records, and each carries its message id and CRC.
//! A flush after a segment was created or renamed also syncs the folder, so the name a
//! durable record points at is durable too. A few messages deferred for days must not
//! keep whole segments on disk, so records start on 4 KiB boundaries and
//! [`Spool::reclaim`] punches holes (`FALLOC_FL_PUNCH_HOLE`) over the dead records of
//! mostly dead segments, again only over records released before a finished flush.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::domain::MessageId;

/// A segment is closed once this many bytes are written to it.
pub const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
/// Emptied segments kept as spare files for reuse.
const SPARES: usize = 4;
/// Records start on this boundary, so a dead record's blocks can be punched out whole.
const ALIGN: u64 = 4096;
/// Record header: magic, body length, message id, CRC-32 of the body.
const HEADER: usize = 4 + 4 + 16 + 4;
const MAGIC: &[u8; 4] = b"MGb1";

/// Where a message's signed bytes are in the spool: segment file, offset of the
/// record, length of the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BodyLocation {
    pub segment: u32,
    pub offset: u64,
    pub len: u32,
}

fn record_len(loc: &BodyLocation) -> u64 {
    HEADER as u64 + loc.len as u64
}

fn aligned(n: u64) -> u64 {
    n.div_ceil(ALIGN) * ALIGN
}

/// Failures of the spool; the store wraps them with its path.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: the body of message {id} at offset {offset} is damaged or was never \
         written to disk ({why})"
    )]
    Damaged {
        path: PathBuf,
        id: MessageId,
        offset: u64,
        why: &'static str,
    },
}

/// An emptied segment file waiting to be reused.
struct Spare {
    /// N of its name `spare-N`.
    slot: usize,
    file: File,
    path: PathBuf,
}

struct Segment {
    number: u32,
    file: File,
    path: PathBuf,
    /// Written since the last `fdatasync`.
    dirty: AtomicBool,
}

/// The live records of one segment: offset → record length.
#[derive(Default)]
struct Live {
    records: BTreeMap<u64, u64>,
    bytes: u64,
    /// A record died since the last hole punching.
    released_since_punch: bool,
}

struct State {
    active: Arc<Segment>,
    /// Next free offset in the active segment.
    end: u64,
    segments: HashMap<u32, Arc<Segment>>,
    /// Size in bytes of every closed segment.
    sizes: HashMap<u32, u64>,
    live: HashMap<u32, Live>,
    /// Flushes begun so far; a release is durable once a flush begun after it ends.
    flushes_begun: u64,
    /// Released records whose release may not be durable yet, with the flush count
    /// at the time: their bytes must stay until a later flush has finished.
    unflushed: Vec<(u64, BodyLocation)>,
    /// Closed segments with no live body, let go after the next flush.
    doomed: Vec<u32>,
    /// Emptied segment files renamed `spare-N`, to become the next new segments.
    spares: Vec<Spare>,
    /// A segment was created or renamed since the last flush began.
    folder_changed: bool,
    /// The file system refused to punch holes once; not tried again.
    no_punching: bool,
}

/// The segment files of one store.
pub struct Spool {
    dir: PathBuf,
    fsync: bool,
    state: Mutex<State>,
}

/// What a flush began with: its number and the segments to delete once it succeeds.
pub struct FlushTicket {
    flush: u64,
    doomed: Vec<u32>,
}

impl Spool {
    /// Opens the spool folder, learns the live bodies from `live` (the location of every
    /// open message), deletes segments nothing points at, and starts a new segment.
    pub fn open(
        dir: &Path,
        fsync: bool,
        live: impl Iterator<Item = BodyLocation>,
    ) -> Result<Spool, SpoolError> {
        let io = |path: &Path, source| SpoolError::Io {
            path: path.to_path_buf(),
            source,
        };
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| io(dir, e))?;
        }
        let mut by_segment: HashMap<u32, Live> = HashMap::new();
        for loc in live {
            let l = by_segment.entry(loc.segment).or_default();
            if l.records.insert(loc.offset, record_len(&loc)).is_none() {
                l.bytes += record_len(&loc);
            }
        }
        let mut segments = HashMap::new();
        let mut sizes = HashMap::new();
        let mut spares = Vec::new();
        let mut highest = 0u32;
        let mut spare_files = Vec::new();
        let mut dead = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
            let entry = entry.map_err(|e| io(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(slot) = spare_slot(&name) {
                spare_files.push((slot, entry.path()));
                continue;
            }
            let Some(number) = segment_number(&name) else {
                continue;
            };
            highest = highest.max(number);
            let path = entry.path();
            if !by_segment.contains_key(&number) {
                dead.push(path);
                continue;
            }
            // Read and write: nothing is appended to an old segment, but its holes are
            // punched, and once empty it becomes a spare that is written as a new
            // segment (a read-only handle failed both with EBADF).
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| io(&path, e))?;
            let size = file.metadata().map_err(|e| io(&path, e))?.len();
            sizes.insert(number, size);
            // Punch what died while the process was down, at the next reclaim.
            if let Some(l) = by_segment.get_mut(&number) {
                l.released_since_punch = true;
            }
            segments.insert(
                number,
                Arc::new(Segment {
                    number,
                    file,
                    path,
                    dirty: AtomicBool::new(false),
                }),
            );
        }
        // Segments nothing points at become spares in the free slots, or go.
        let mut taken: Vec<usize> = Vec::new();
        for (slot, path) in spare_files {
            if slot < SPARES {
                taken.push(slot);
            } else {
                dead.push(path);
            }
        }
        for path in dead {
            match free_slot(&taken) {
                Some(slot) => {
                    std::fs::rename(&path, dir.join(spare_name(slot))).map_err(|e| io(&path, e))?;
                    taken.push(slot);
                }
                None => std::fs::remove_file(&path).map_err(|e| io(&path, e))?,
            }
        }
        for slot in taken {
            let path = dir.join(spare_name(slot));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| io(&path, e))?;
            spares.push(Spare { slot, file, path });
        }
        let active = new_segment(dir, highest + 1, spares.pop())?;
        segments.insert(active.number, active.clone());
        Ok(Spool {
            dir: dir.to_path_buf(),
            fsync,
            state: Mutex::new(State {
                active,
                end: 0,
                segments,
                sizes,
                live: by_segment,
                flushes_begun: 0,
                unflushed: Vec::new(),
                doomed: Vec::new(),
                spares,
                folder_changed: true,
                no_punching: false,
            }),
        })
    }

    /// Appends a body; returns where it is. Not durable until the next flush.
    pub fn write(&self, id: &MessageId, body: &[u8]) -> Result<BodyLocation, SpoolError> {
        let len = u32::try_from(body.len()).map_err(|_| SpoolError::Io {
            path: self.dir.clone(),
            source: std::io::Error::other("a message body over 4 GiB"),
        })?;
        let mut record = Vec::with_capacity(HEADER + body.len());
        record.extend_from_slice(MAGIC);
        record.extend_from_slice(&len.to_be_bytes());
        record.extend_from_slice(id.as_bytes());
        record.extend_from_slice(&crc32fast::hash(body).to_be_bytes());
        record.extend_from_slice(body);
        let (segment, offset) = self.reserve(record.len() as u64)?;
        let loc = BodyLocation {
            segment: segment.number,
            offset,
            len,
        };
        if let Err(source) = segment.file.write_all_at(&record, offset) {
            self.release(loc);
            return Err(SpoolError::Io {
                path: segment.path.clone(),
                source,
            });
        }
        segment.dirty.store(true, Ordering::SeqCst);
        Ok(loc)
    }

    /// Reserves room for a record of `n` bytes, closing the active segment when full.
    fn reserve(&self, n: u64) -> Result<(Arc<Segment>, u64), SpoolError> {
        let mut st = self.state.lock().expect("spool lock");
        if st.end > 0 && st.end + n > SEGMENT_BYTES {
            let spare = st.spares.pop();
            let next = new_segment(&self.dir, st.active.number + 1, spare)?;
            st.folder_changed = true;
            let closed = std::mem::replace(&mut st.active, next.clone());
            let closed_size = st.end;
            st.sizes.insert(closed.number, closed_size);
            st.segments.insert(next.number, next);
            st.end = 0;
            if st
                .live
                .get(&closed.number)
                .is_none_or(|l| l.records.is_empty())
            {
                st.live.remove(&closed.number);
                st.doomed.push(closed.number);
            }
        }
        let offset = st.end;
        st.end = aligned(offset + n);
        let number = st.active.number;
        let l = st.live.entry(number).or_default();
        l.records.insert(offset, n);
        l.bytes += n;
        Ok((st.active.clone(), offset))
    }

    /// Reads the body at `loc`, checking that it is the body of `id`.
    pub fn read(&self, id: &MessageId, loc: BodyLocation) -> Result<Vec<u8>, SpoolError> {
        let segment = self
            .state
            .lock()
            .expect("spool lock")
            .segments
            .get(&loc.segment)
            .cloned();
        let damaged = |why| SpoolError::Damaged {
            path: self.dir.join(segment_name(loc.segment)),
            id: *id,
            offset: loc.offset,
            why,
        };
        let segment = segment.ok_or_else(|| damaged("its segment file is missing"))?;
        let mut record = vec![0u8; record_len(&loc) as usize];
        match segment.file.read_exact_at(&mut record, loc.offset) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(damaged("the segment ends before it"));
            }
            Err(source) => {
                return Err(SpoolError::Io {
                    path: segment.path.clone(),
                    source,
                });
            }
        }
        let (header, body) = record.split_at(HEADER);
        if &header[..4] != MAGIC || header[4..8] != loc.len.to_be_bytes() {
            return Err(damaged("no record header there"));
        }
        if &header[8..24] != id.as_bytes() {
            return Err(damaged("the record there belongs to another message"));
        }
        if header[24..28] != crc32fast::hash(body).to_be_bytes() {
            return Err(damaged("checksum mismatch"));
        }
        record.drain(..HEADER);
        Ok(record)
    }

    /// Forgets a body whose message record no longer points at it (call after writing
    /// that record). Releasing twice is harmless.
    pub fn release(&self, loc: BodyLocation) {
        let mut st = self.state.lock().expect("spool lock");
        let active = st.active.number;
        let Some(l) = st.live.get_mut(&loc.segment) else {
            return;
        };
        let Some(n) = l.records.remove(&loc.offset) else {
            return;
        };
        l.bytes -= n;
        l.released_since_punch = true;
        if l.records.is_empty() && loc.segment != active {
            st.live.remove(&loc.segment);
            st.doomed.push(loc.segment);
        } else {
            let flush = st.flushes_begun;
            st.unflushed.push((flush, loc));
        }
    }

    /// [`Spool::release`] for a record that may have no body.
    pub fn release_opt(&self, loc: Option<BodyLocation>) {
        if let Some(loc) = loc {
            self.release(loc);
        }
    }

    /// Step one of a flush: `fdatasync` every segment written since the last flush, and
    /// the folder when a segment was created or renamed since.
    pub fn sync(&self) -> Result<FlushTicket, SpoolError> {
        let (segments, ticket, folder_changed) = {
            let mut st = self.state.lock().expect("spool lock");
            st.flushes_begun += 1;
            let segments: Vec<Arc<Segment>> = st.segments.values().cloned().collect();
            let ticket = FlushTicket {
                flush: st.flushes_begun,
                doomed: std::mem::take(&mut st.doomed),
            };
            (segments, ticket, std::mem::take(&mut st.folder_changed))
        };
        let failed = |ticket: FlushTicket, path: &Path, source| {
            self.flush_failed(ticket);
            Err(SpoolError::Io {
                path: path.to_path_buf(),
                source,
            })
        };
        for s in segments {
            if s.dirty.swap(false, Ordering::SeqCst)
                && self.fsync
                && let Err(source) = s.file.sync_data()
            {
                s.dirty.store(true, Ordering::SeqCst);
                self.state.lock().expect("spool lock").folder_changed |= folder_changed;
                return failed(ticket, &s.path, source);
            }
        }
        if folder_changed
            && self.fsync
            && let Err(source) = File::open(&self.dir).and_then(|d| d.sync_all())
        {
            self.state.lock().expect("spool lock").folder_changed = true;
            return failed(ticket, &self.dir, source);
        }
        Ok(ticket)
    }

    /// The flush did not finish: its segments stay listed for the next one.
    pub fn flush_failed(&self, ticket: FlushTicket) {
        self.state
            .lock()
            .expect("spool lock")
            .doomed
            .extend(ticket.doomed);
    }

    /// The flush finished: what was released before it began is durable. Deletes the
    /// segments nothing points at any more.
    pub fn flushed(&self, ticket: FlushTicket) {
        self.state
            .lock()
            .expect("spool lock")
            .unflushed
            .retain(|(flush, _)| *flush >= ticket.flush);
        for number in ticket.doomed {
            let segment = {
                let mut st = self.state.lock().expect("spool lock");
                st.sizes.remove(&number);
                st.segments.remove(&number)
            };
            if let Some(s) = segment {
                self.let_go(s);
            }
        }
    }

    /// Keeps an emptied segment as a spare while there are fewer than [`SPARES`] (and
    /// nobody else holds it), else deletes it.
    fn let_go(&self, segment: Arc<Segment>) {
        let slot = {
            let st = self.state.lock().expect("spool lock");
            free_slot(&st.spares.iter().map(|s| s.slot).collect::<Vec<_>>())
        };
        let path = segment.path.clone();
        if let (Some(slot), Ok(segment)) = (slot, Arc::try_unwrap(segment)) {
            let spare_path = self.dir.join(spare_name(slot));
            match std::fs::rename(&path, &spare_path) {
                Ok(()) => {
                    let mut st = self.state.lock().expect("spool lock");
                    st.spares.push(Spare {
                        slot,
                        file: segment.file,
                        path: spare_path,
                    });
                    st.folder_changed = true;
                    return;
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot keep an empty spool segment as a spare; deleting it");
                }
            }
        }
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot delete an empty spool segment");
        }
    }

    /// Punches holes over the dead records of closed segments that are less than a
    /// quarter alive, so their disk space returns while their last messages wait.
    /// Returns the bytes punched (holes punched again count again).
    pub fn reclaim(&self) -> Result<u64, SpoolError> {
        let work: Vec<(Arc<Segment>, Vec<Hole>)> = {
            let mut st = self.state.lock().expect("spool lock");
            if st.no_punching {
                return Ok(0);
            }
            let active = st.active.number;
            let mut work = Vec::new();
            let numbers: Vec<u32> = st.live.keys().copied().collect();
            for number in numbers {
                let Some(size) = st.sizes.get(&number).copied() else {
                    continue;
                };
                let Some(segment) = st.segments.get(&number).cloned() else {
                    continue;
                };
                // Records released since the last finished flush keep their bytes.
                let mut keep: BTreeMap<u64, u64> = st
                    .unflushed
                    .iter()
                    .filter(|(_, l)| l.segment == number)
                    .map(|(_, l)| (l.offset, record_len(l)))
                    .collect();
                let Some(l) = st.live.get_mut(&number) else {
                    continue;
                };
                if number == active || !l.released_since_punch || l.bytes * 4 >= size {
                    continue;
                }
                l.released_since_punch = !keep.is_empty();
                keep.extend(l.records.iter().map(|(o, n)| (*o, *n)));
                work.push((segment, holes(&keep, size)));
            }
            work
        };
        let mut punched = 0;
        for (segment, holes) in work {
            for (offset, len) in holes {
                match punch_hole(&segment.file, offset, len) {
                    Ok(()) => punched += len,
                    Err(e)
                        if e.raw_os_error() == Some(libc::EOPNOTSUPP)
                            || e.raw_os_error() == Some(libc::ENOSYS) =>
                    {
                        tracing::warn!(path = %segment.path.display(), "the file system cannot punch holes: mostly empty spool segments keep their space until their last message is final");
                        self.state.lock().expect("spool lock").no_punching = true;
                        return Ok(punched);
                    }
                    Err(source) => {
                        return Err(SpoolError::Io {
                            path: segment.path.clone(),
                            source,
                        });
                    }
                }
            }
        }
        Ok(punched)
    }

    /// The spool's segment files, oldest first.
    pub fn segment_files(&self) -> Vec<PathBuf> {
        let st = self.state.lock().expect("spool lock");
        let mut numbers: Vec<u32> = st.segments.keys().copied().collect();
        numbers.sort_unstable();
        numbers
            .into_iter()
            .map(|n| self.dir.join(segment_name(n)))
            .collect()
    }
}

/// A byte range to punch out: offset, length.
type Hole = (u64, u64);

/// The aligned gaps between the records to keep, up to `size`.
fn holes(keep: &BTreeMap<u64, u64>, size: u64) -> Vec<Hole> {
    let mut out = Vec::new();
    let mut at = 0;
    for (offset, len) in keep {
        if *offset > at {
            out.push((at, offset - at));
        }
        at = at.max(aligned(offset + len));
    }
    if size > at {
        out.push((at, size - at));
    }
    out
}

fn punch_hole(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    // SAFETY: fallocate on a file descriptor this process owns; no memory is passed.
    let rc = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset as libc::off_t,
            len as libc::off_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn segment_name(number: u32) -> String {
    format!("{number:010}.seg")
}

fn segment_number(name: &str) -> Option<u32> {
    name.strip_suffix(".seg")
        .filter(|digits| digits.len() == 10)
        .and_then(number)
}

fn spare_name(slot: usize) -> String {
    format!("spare-{slot}")
}

/// The lowest spare slot not in `taken`, if any is left.
fn free_slot(taken: &[usize]) -> Option<usize> {
    (0..SPARES).find(|n| !taken.contains(n))
}

fn spare_slot(name: &str) -> Option<usize> {
    name.strip_prefix("spare-").and_then(number)
}

/// A name part that is all ASCII digits (no sign, no blank), as a number.
fn number<T: std::str::FromStr>(digits: &str) -> Option<T> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Segment `number`: a spare renamed into place, or a new file.
fn new_segment(dir: &Path, number: u32, spare: Option<Spare>) -> Result<Arc<Segment>, SpoolError> {
    let path = dir.join(segment_name(number));
    if let Some(spare) = spare {
        match std::fs::rename(&spare.path, &path) {
            Ok(()) => {
                return Ok(Arc::new(Segment {
                    number,
                    file: spare.file,
                    path,
                    dirty: AtomicBool::new(false),
                }));
            }
            Err(e) => {
                tracing::warn!(path = %spare.path.display(), error = %e, "cannot reuse a spare spool segment; starting a new file");
            }
        }
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|source| SpoolError::Io {
            path: path.clone(),
            source,
        })?;
    Ok(Arc::new(Segment {
        number,
        file,
        path,
        dirty: AtomicBool::new(false),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> MessageId {
        MessageId::from_bytes([n; 16])
    }

    /// The names in `dir`, sorted.
    fn file_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Disk blocks a file really uses, in bytes.
    fn allocated(path: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).unwrap().blocks() * 512
    }

    #[test]
    fn a_body_reads_back_from_an_aligned_record() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), true, std::iter::empty()).unwrap();
        let a = spool.write(&id(1), b"first body").unwrap();
        let b = spool.write(&id(2), b"second").unwrap();
        assert_eq!((a.offset, b.offset), (0, ALIGN));
        assert_eq!(spool.read(&id(1), a).unwrap(), b"first body");
        assert_eq!(spool.read(&id(2), b).unwrap(), b"second");
    }

    #[test]
    fn a_read_of_another_message_or_of_damaged_bytes_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), false, std::iter::empty()).unwrap();
        let a = spool.write(&id(1), b"the body").unwrap();
        let e = spool.read(&id(9), a).unwrap_err().to_string();
        assert!(e.contains("belongs to another message"), "{e}");
        let path = &spool.segment_files()[0];
        let mut bytes = std::fs::read(path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(path, &bytes).unwrap();
        let e = spool.read(&id(1), a).unwrap_err().to_string();
        assert!(e.contains("checksum mismatch") && e.contains(".seg"), "{e}");
        let beyond = BodyLocation { offset: 4096, ..a };
        let e = spool.read(&id(1), beyond).unwrap_err().to_string();
        assert!(e.contains("ends before it"), "{e}");
    }

    #[test]
    fn a_closed_segment_is_let_go_only_after_the_flush_that_follows_its_last_release() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), false, std::iter::empty()).unwrap();
        let big = vec![b'x'; (SEGMENT_BYTES / 2) as usize];
        let a = spool.write(&id(1), &big).unwrap();
        let b = spool.write(&id(2), &big).unwrap(); // closes segment 1
        assert_ne!(a.segment, b.segment);
        let during = spool.sync().unwrap(); // a flush that began before the release
        spool.release(a);
        spool.release(a); // twice is harmless
        spool.flushed(during);
        assert_eq!(spool.segment_files().len(), 2, "deleted before its flush");
        let after = spool.sync().unwrap();
        spool.flushed(after);
        let files = spool.segment_files();
        assert_eq!(files.len(), 1);
        assert!(files[0].ends_with(segment_name(b.segment)));
        assert_eq!(
            file_names(dir.path()),
            [segment_name(b.segment), spare_name(0)]
        );
    }

    #[test]
    fn an_emptied_segment_file_becomes_the_next_new_segment() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), true, std::iter::empty()).unwrap();
        let big = vec![b'x'; (SEGMENT_BYTES / 2) as usize];
        let a = spool.write(&id(1), &big).unwrap();
        let inode = std::fs::metadata(&spool.segment_files()[0]).unwrap().ino();
        let b = spool.write(&id(2), &big).unwrap(); // closes segment 1
        spool.release(a);
        spool.flushed(spool.sync().unwrap());
        assert_eq!(
            std::fs::metadata(dir.path().join(spare_name(0)))
                .unwrap()
                .ino(),
            inode
        );
        let c = spool.write(&id(3), &big).unwrap(); // closes segment 2
        assert_eq!(c.segment, b.segment + 1);
        let path = dir.path().join(segment_name(c.segment));
        assert_eq!(
            std::fs::metadata(&path).unwrap().ino(),
            inode,
            "the spare, renamed"
        );
        assert!(!dir.path().join(spare_name(0)).exists());
        assert_eq!(spool.read(&id(3), c).unwrap(), big);
        let e = spool.read(
            &id(1),
            BodyLocation {
                segment: c.segment,
                ..a
            },
        );
        assert!(
            e.is_err(),
            "the old record in the reused file is not id 3's"
        );
    }

    #[test]
    fn open_keeps_a_few_unused_segments_as_spares_and_deletes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![b'x'; SEGMENT_BYTES as usize];
        let kept = {
            let spool = Spool::open(dir.path(), false, std::iter::empty()).unwrap();
            for n in 0..SPARES + 2 {
                spool.write(&id(n as u8), &big).unwrap();
            }
            spool.write(&id(99), b"kept").unwrap()
        };
        let spool = Spool::open(dir.path(), false, [kept].into_iter()).unwrap();
        assert_eq!(spool.read(&id(99), kept).unwrap(), b"kept");
        let names = file_names(dir.path());
        let spares = names.iter().filter(|n| spare_slot(n).is_some()).count();
        // One spare became the new active segment.
        assert_eq!(spares, SPARES - 1, "{names:?}");
        assert_eq!(names.len(), SPARES + 1, "{names:?}");
    }

    #[test]
    fn open_lets_go_of_segments_nothing_points_at_and_starts_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let (keep, drop_me) = {
            let spool = Spool::open(dir.path(), true, std::iter::empty()).unwrap();
            let keep = spool.write(&id(1), b"kept").unwrap();
            let big = vec![b'x'; SEGMENT_BYTES as usize];
            let drop_me = spool.write(&id(2), &big).unwrap();
            spool.sync().unwrap();
            (keep, drop_me)
        };
        assert_ne!(keep.segment, drop_me.segment);
        let spool = Spool::open(dir.path(), true, [keep].into_iter()).unwrap();
        assert_eq!(spool.read(&id(1), keep).unwrap(), b"kept");
        assert!(!dir.path().join(segment_name(drop_me.segment)).exists());
        let next = spool.write(&id(3), b"new").unwrap();
        assert!(
            next.segment > drop_me.segment,
            "never appends to an old segment"
        );
    }

    #[test]
    fn a_mostly_dead_segment_gives_its_space_back_once_the_releases_are_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), true, std::iter::empty()).unwrap();
        let body = vec![b'y'; 60_000];
        let mut locs = Vec::new();
        while locs.last().is_none_or(|l: &BodyLocation| l.segment == 1) {
            locs.push(spool.write(&id(locs.len() as u8), &body).unwrap());
        }
        let first: Vec<BodyLocation> = locs.iter().copied().filter(|l| l.segment == 1).collect();
        let path = spool.segment_files()[0].clone();
        spool.flushed(spool.sync().unwrap());
        let before = allocated(&path);
        assert!(before >= 16_000_000, "{before}");
        // All but the first body die; their releases are not flushed yet.
        for l in &first[1..] {
            spool.release(*l);
        }
        assert_eq!(
            spool.reclaim().unwrap(),
            0,
            "unflushed releases keep their bytes"
        );
        spool.flushed(spool.sync().unwrap());
        let punched = spool.reclaim().unwrap();
        assert!(punched > 15_000_000, "{punched}");
        let after = allocated(&path);
        assert!(after < 200_000, "still {after} bytes allocated");
        assert_eq!(
            spool.read(&id(0), first[0]).unwrap(),
            body,
            "the live body stays"
        );
        assert_eq!(spool.reclaim().unwrap(), 0, "nothing new to punch");
    }

    #[test]
    fn holes_fall_between_the_kept_records() {
        let keep = BTreeMap::from([(4096, 100), (16384, 5000)]);
        assert_eq!(
            holes(&keep, 40960),
            vec![(0, 4096), (8192, 8192), (24576, 16384)]
        );
    }
}
