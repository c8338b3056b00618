//! The raw BPF syscalls dnssink makes itself, where aya has no call for them: the rule table
//! created with its memory mapped (one copy rather than a syscall per bucket), and the block
//! lists created with BTF of their own.

use std::io;

use anyhow::{Context as _, Result, anyhow, bail};
use aya::maps::{LpmTrie, Map, MapData, lpm_trie::Key};
use dnssink_common::table::{Bucket, Buckets};

/// The attributes of BPF_MAP_CREATE that dnssink sets.
#[repr(C)]
#[derive(Default)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
    map_ifindex: u32,
    btf_fd: u32,
    btf_key_type_id: u32,
    btf_value_type_id: u32,
    btf_vmlinux_value_type_id: u32,
    map_extra: u64,
}

fn map_create(attr: &MapCreate) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd as _;
    const BPF_MAP_CREATE: libc::c_long = 0;
    // SAFETY: BPF_MAP_CREATE with an attr that lives across the call; the result is a new fd.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_CREATE,
            attr as *const MapCreate,
            std::mem::size_of::<MapCreate>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd, and nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// A BTF object of plain types for a map made outside the object: a key struct of
/// `key_size` bytes (type 4) and a value struct of `value_size` bytes (type 6).
///
/// An LPM trie for a map-in-map slot needs BTF like the slot's template has: from 5.15 to
/// 6.1 the kernel compares where the two have a timer, which is "none" for a struct value
/// with BTF and "not looked for" for a map without BTF (or a value that is no struct), and
/// refuses the update (EINVAL) when they differ.
fn plain_btf(key_size: u32, value_size: u32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd as _;
    const BPF_BTF_LOAD: libc::c_long = 18;
    const INT: u32 = 1 << 24;
    const ARRAY: u32 = 3 << 24;
    const STRUCT: u32 = 4 << 24;
    let strings = b"\0u32\0u8\0key\0b\0value\0";
    #[rustfmt::skip]
    let types: [u32; 32] = [
        1, INT, 4, 32, // 1: u32
        5, INT, 1, 8, // 2: u8
        0, ARRAY, 0, 2, 1, key_size, // 3: [u8; key_size]
        8, STRUCT | 1, key_size, 12, 3, 0, // 4: struct key { b: [u8; key_size] }
        0, ARRAY, 0, 2, 1, value_size, // 5: [u8; value_size]
        14, STRUCT | 1, value_size, 12, 5, 0, // 6: struct value { b: [u8; value_size] }
    ];
    let type_len = (types.len() * 4) as u32;
    let mut blob = Vec::new();
    blob.extend_from_slice(&0xeb9fu16.to_le_bytes());
    blob.extend_from_slice(&[1, 0]); // version, flags
    for v in [24, 0, type_len, type_len, strings.len() as u32] {
        blob.extend_from_slice(&v.to_le_bytes());
    }
    for t in &types {
        blob.extend_from_slice(&t.to_le_bytes());
    }
    blob.extend_from_slice(strings);
    #[repr(C)]
    struct BtfLoad {
        btf: u64,
        log_buf: u64,
        size: u32,
        log_size: u32,
        log_level: u32,
        // Zero, not padding: a kernel that does not know the fields past its own refuses
        // an attr whose bytes there are not zero.
        _pad: u32,
    }
    let attr = BtfLoad {
        btf: blob.as_ptr() as u64,
        log_buf: 0,
        size: blob.len() as u32,
        log_size: 0,
        log_level: 0,
        _pad: 0,
    };
    // SAFETY: BPF_BTF_LOAD of a blob and an attr that live across the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_BTF_LOAD,
            &attr as *const BtfLoad,
            std::mem::size_of::<BtfLoad>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd, and nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// An empty LPM trie of `entries` for a block list slot, with BTF (see [`plain_btf`]).
pub(super) fn create_trie<K: aya::Pod, V: aya::Pod>(
    entries: u32,
) -> Result<LpmTrie<MapData, K, V>> {
    use std::os::fd::AsRawFd as _;
    const BPF_MAP_TYPE_LPM_TRIE: u32 = 11;
    const NO_PREALLOC: u32 = 1;
    let key_size = std::mem::size_of::<Key<K>>() as u32;
    let value_size = std::mem::size_of::<V>() as u32;
    let btf = plain_btf(key_size, value_size).context("loading BTF for a block list")?;
    let mut attr = MapCreate {
        map_type: BPF_MAP_TYPE_LPM_TRIE,
        key_size,
        value_size,
        max_entries: entries,
        map_flags: NO_PREALLOC,
        btf_fd: btf.as_raw_fd() as u32,
        btf_key_type_id: 4,
        btf_value_type_id: 6,
        ..MapCreate::default()
    };
    attr.map_name[..13].copy_from_slice(b"dnssink_block");
    let fd = map_create(&attr).context("creating a block list (BPF_MAP_CREATE)")?;
    let map = Map::from_map_data(MapData::from_fd(fd)?)?;
    Ok(LpmTrie::try_from(map)?)
}

/// A new ARRAY map holding `buckets`, written through a shared mapping of the map's memory:
/// one copy instead of a syscall per bucket.
pub(super) fn create_table(buckets: &[Bucket]) -> Result<MapData> {
    const BPF_MAP_TYPE_ARRAY: u32 = 2;
    let n = u32::try_from(buckets.len()).context("rule table too large")?;
    let bytes = std::mem::size_of_val(buckets);
    let mut attr = MapCreate {
        map_type: BPF_MAP_TYPE_ARRAY,
        key_size: 4,
        value_size: std::mem::size_of::<Bucket>() as u32,
        max_entries: n,
        map_flags: dnssink_common::TABLE_MAP_FLAGS,
        ..MapCreate::default()
    };
    attr.map_name[..12].copy_from_slice(b"dnssink_rule");
    let fd = map_create(&attr).map_err(|e| {
        anyhow!("BPF_MAP_CREATE: {e} (is the memlock limit too low for a table this size?)")
    })?;
    let page = 4096;
    let len = bytes.div_ceil(page) * page;
    // SAFETY: a shared mapping of the map's own memory, written within `bytes`, then unmapped.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            0,
        );
        if p == libc::MAP_FAILED {
            bail!("mapping the rule table: {}", io::Error::last_os_error());
        }
        std::ptr::copy_nonoverlapping(buckets.as_ptr() as *const u8, p as *mut u8, bytes);
        libc::munmap(p, len);
    }
    MapData::from_fd(fd).context("opening the rule table")
}

/// The rule table a running (or kept) program looks names up in, mapped read-only from the
/// kernel: `query` asks it what the kernel answers, through the same lookup.
pub struct LiveTable {
    ptr: *const Bucket,
    buckets: usize,
    len: usize,
}

impl LiveTable {
    /// The table in the pinned `TABLES` map at `pin`.
    pub fn open(pin: &std::path::Path) -> Result<LiveTable> {
        use aya::maps::of_maps::ArrayOfMaps;
        let data = MapData::from_pin(pin).with_context(|| format!("opening {}", pin.display()))?;
        let slot: ArrayOfMaps<MapData, MapData> = ArrayOfMaps::try_from(Map::ArrayOfMaps(data))?;
        let table = slot.get(&0, 0).context("reading the live rule table")?;
        let buckets = table.info()?.max_entries() as usize;
        let len = (buckets * std::mem::size_of::<Bucket>()).div_ceil(4096) * 4096;
        // SAFETY: a read-only shared mapping of the map's memory, `len` bytes (the map's
        // values rounded up to pages, as the kernel maps them), unmapped on drop. The fd may
        // close after mmap: the mapping holds the map.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(table.fd())),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            bail!(
                "mapping the live rule table: {}",
                io::Error::last_os_error()
            );
        }
        Ok(LiveTable {
            ptr: p as *const Bucket,
            buckets,
            len,
        })
    }
}

impl Buckets for LiveTable {
    fn bucket(&self, i: u32) -> Option<&Bucket> {
        // SAFETY: `i` is within the mapped buckets.
        ((i as usize) < self.buckets).then(|| unsafe { &*self.ptr.add(i as usize) })
    }
}

impl Drop for LiveTable {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `open`.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}
