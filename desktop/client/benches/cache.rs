//! Benchmark of the client's offline cache (`roomler_client::cache::Cache`).
//!
//! It fills a cache file in a temporary folder with generated messages and measures:
//!
//! 1. Insert rate: `--messages` messages stored with `store_messages` in batches of
//!    `--batch`, round-robin over `--rooms` rooms. The first room gets
//!    `--big-room-messages` of them and the other rooms share the rest evenly. Only the
//!    `store_messages` calls are timed, not building the messages.
//! 2. Room open time: `Cache::open` of the file followed by `history(room, None, 50)` of
//!    the first room, `--opens` times with a new `Cache` each time, reported as the
//!    median. Each open starts with an empty SQLite page cache, but the operating
//!    system's file cache stays warm, so this is a warm-file open and not a cold boot.
//! 3. Search latency: `search(query, 20)` for `--searches` queries drawn uniformly from
//!    the vocabulary. About a quarter of them are the first three letters of a word,
//!    the rest whole words. `Cache::search` always matches its last word as a prefix.
//! 4. Memory: a child process (this binary with `--memory-probe`) opens the file, lists
//!    the rooms, reads each room's first page of 50 messages and reports its VmRSS after
//!    each step and its VmHWM, from `/proc/self/status`.
//! 5. Room list: `rooms()`, which counts unread messages, first with every message
//!    unread and then after `set_read` marked every room as read.
//!
//! Message bodies are words from a generated vocabulary of `--vocabulary` words, drawn
//! with a Zipf distribution of exponent 1, close to word frequencies in natural text.
//! Each body grows word by word until it reaches a random length of 60 to 140
//! characters, so bodies average about 105 characters. Some messages carry a
//! mention, a reply preview, reactions, an attachment or an edit time. HTML comes from
//! `roomler_shared::rich_text::render_html`, as on the server. Runs with the same
//! arguments, `--seed` included, generate the same messages and queries.
//!
//! Run it with:
//!
//! ```text
//! cargo bench -p roomler-client --bench cache -- --json cache-bench.json
//! cargo bench -p roomler-client --bench cache -- --messages 20000 --big-room-messages 5000
//! ```
//!
//! The second command is a smoke run of a few seconds. Linux only, because it reads
//! `/proc`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use roomler_client::cache::Cache;
use roomler_shared::model::{
    Attachment, Mention, Message, Reaction, ReplyPreview, Role, Room, RoomKind, UserRef,
};
use roomler_shared::rich_text::{excerpt, render_html};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Messages per page, as the app requests when it opens a room.
const PAGE_SIZE: u32 = 50;

/// Maximum hits per search, as the app requests.
const SEARCH_LIMIT: u32 = 20;

/// Authors of the generated messages.
const USER_COUNT: usize = 50;

/// Letters of a query that is a prefix of a word.
const PREFIX_CHARS: usize = 3;

/// Runs of each measurement that only needs a few samples (room list, most frequent word).
const REPEAT_RUNS: usize = 5;

/// Start of the generated message times: 2025-01-01T00:00:00Z.
const START_UNIX_MS: u64 = 1_735_689_600_000;

#[derive(Debug, Parser)]
#[command(about = "Benchmark of the Roomler client's offline cache")]
struct Args {
    /// Messages stored in total.
    #[arg(long, default_value_t = 1_000_000)]
    messages: usize,

    /// Rooms the messages are spread over.
    #[arg(long, default_value_t = 20)]
    rooms: usize,

    /// Messages of the first room, whose open time is measured. The other rooms share
    /// the rest of `--messages` evenly.
    #[arg(long, default_value_t = 100_000)]
    big_room_messages: usize,

    /// Messages per `store_messages` call.
    #[arg(long, default_value_t = 1000)]
    batch: usize,

    /// Words in the generated vocabulary.
    #[arg(long, default_value_t = 20_000)]
    vocabulary: usize,

    /// Times the room open is measured.
    #[arg(long, default_value_t = 10)]
    opens: usize,

    /// Search queries measured.
    #[arg(long, default_value_t = 200)]
    searches: usize,

    /// Seed of the generated messages and queries.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Folder in which the temporary database folder is created, by default the
    /// system's temporary folder. Use a folder on the disk you want to measure, because
    /// a RAM-backed /tmp gives faster numbers than a disk.
    #[arg(long)]
    dir: Option<PathBuf>,

    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,

    /// Keep the database folder after the run, for inspection with `sqlite3`. The room
    /// list measurement has marked every room as read in it.
    #[arg(long)]
    keep: bool,

    /// Opens the cache at this path, reads every room's first page and prints the
    /// memory report as JSON. The benchmark runs itself with it to measure memory in a
    /// fresh process.
    #[arg(long, hide = true)]
    memory_probe: Option<PathBuf>,

    /// Ignored. `cargo bench` passes it to every benchmark binary.
    #[arg(long, hide = true)]
    bench: bool,
}

impl Args {
    /// Checks the sizes and returns the number of messages of each room, first room first.
    fn room_sizes(&self) -> Result<Vec<usize>> {
        ensure!(self.rooms >= 1, "--rooms must be at least 1");
        ensure!(self.batch >= 1, "--batch must be at least 1");
        ensure!(self.opens >= 1, "--opens must be at least 1");
        ensure!(self.searches >= 1, "--searches must be at least 1");
        ensure!(
            self.vocabulary >= 10,
            "--vocabulary must be at least 10, got {}",
            self.vocabulary
        );
        ensure!(
            self.big_room_messages >= 1 && self.big_room_messages <= self.messages,
            "--big-room-messages must be between 1 and --messages ({}), got {}",
            self.messages,
            self.big_room_messages
        );

        let rest = self.messages - self.big_room_messages;
        let others = self.rooms - 1;
        if others == 0 {
            ensure!(
                rest == 0,
                "with --rooms 1, --big-room-messages must equal --messages ({})",
                self.messages
            );
            return Ok(vec![self.big_room_messages]);
        }

        let mut sizes = vec![self.big_room_messages];
        for index in 0..others {
            sizes.push(rest / others + usize::from(index < rest % others));
        }
        ensure!(
            sizes.iter().all(|&size| size >= 1),
            "every room needs at least one message: {} messages left for {} rooms",
            rest,
            others
        );
        Ok(sizes)
    }
}

#[derive(Debug, Serialize)]
struct Report {
    machine: MachineInfo,
    sqlite_version: &'static str,
    /// 1-minute load average of the machine when the run started and ended. Other
    /// processes on the machine skew the numbers.
    load_average_start: Option<f64>,
    load_average_end: Option<f64>,
    parameters: Parameters,
    database_bytes: u64,
    insert: InsertReport,
    open: OpenReport,
    search: SearchReport,
    memory: MemoryReport,
    room_list: RoomListReport,
}

#[derive(Debug, Serialize)]
struct MachineInfo {
    /// `model name` of the first processor in `/proc/cpuinfo`.
    cpu_model: String,
    /// CPUs this process may run on.
    logical_cpus: usize,
    memory_total_kib: u64,
    /// `/proc/sys/kernel/osrelease`.
    kernel: String,
}

impl MachineInfo {
    /// Reads the machine facts. Fields that cannot be read are `"unknown"` or 0.
    fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|line| line.starts_with("model name"))
            .and_then(|line| line.split_once(':'))
            .map(|(_, value)| value.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|text| text.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        Self {
            cpu_model,
            logical_cpus: std::thread::available_parallelism().map_or(0, |count| count.get()),
            memory_total_kib: parse_kib_field(&meminfo, "MemTotal:").unwrap_or(0),
            kernel,
        }
    }
}

#[derive(Debug, Serialize)]
struct Parameters {
    messages: usize,
    rooms: usize,
    big_room_messages: usize,
    batch: usize,
    vocabulary: usize,
    opens: usize,
    searches: usize,
    seed: u64,
    database_dir: PathBuf,
}

#[derive(Debug, Serialize)]
struct InsertReport {
    messages: usize,
    /// Time spent in `store_messages` calls.
    store_secs: f64,
    /// Time of the whole phase, generating the messages included.
    wall_secs: f64,
    messages_per_sec: f64,
    /// Mean length of the generated bodies, in characters.
    mean_body_chars: f64,
    batch_p50_ms: f64,
    batch_p95_ms: f64,
    batch_max_ms: f64,
}

#[derive(Debug, Serialize)]
struct OpenReport {
    room_messages: usize,
    runs: usize,
    /// `Cache::open`.
    open_median_ms: f64,
    /// `history(room, None, 50)` on the new `Cache`.
    first_page_median_ms: f64,
    /// Both together, per run.
    total_median_ms: f64,
    total_min_ms: f64,
    total_max_ms: f64,
}

#[derive(Debug, Serialize)]
struct SearchReport {
    queries: usize,
    cached_messages: u64,
    p50_ms: f64,
    p95_ms: f64,
    max_ms: f64,
    word_queries: usize,
    word_p50_ms: f64,
    word_p95_ms: f64,
    prefix_queries: usize,
    prefix_p50_ms: f64,
    prefix_p95_ms: f64,
    /// Mean hits returned per query, at most the limit of 20.
    mean_hits: f64,
    queries_without_hits: usize,
    /// The word with the highest Zipf probability. It occurs in about 70% of the messages
    /// at the default sizes.
    most_frequent_word: String,
    most_frequent_word_median_ms: f64,
}

/// Memory of the child process that opened the cache, from `/proc/self/status`.
#[derive(Debug, Serialize, Deserialize)]
struct MemoryReport {
    rss_before_open_kib: u64,
    rss_after_open_kib: u64,
    rss_after_room_list_kib: u64,
    rss_after_first_pages_kib: u64,
    /// VmHWM at the end of the child.
    peak_rss_kib: u64,
    rooms_read: usize,
    messages_read: usize,
}

#[derive(Debug, Serialize)]
struct RoomListReport {
    rooms: usize,
    all_unread_median_ms: f64,
    all_read_median_ms: f64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(path) = &args.memory_probe {
        let report = probe_memory(path)?;
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }

    let room_sizes = args.room_sizes()?;
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let folder = tempfile::Builder::new()
        .prefix("roomler-cache-bench-")
        .tempdir_in(&parent)
        .with_context(|| {
            format!(
                "failed to create a temporary folder in {}",
                parent.display()
            )
        })?;
    let path = folder.path().join("cache.db");

    let machine = MachineInfo::read();
    let load_average_start = load_average_1m();
    println!(
        "machine: {}, {} logical CPUs, {:.1} GiB RAM, Linux {}, SQLite {}",
        machine.cpu_model,
        machine.logical_cpus,
        machine.memory_total_kib as f64 / 1024.0 / 1024.0,
        machine.kernel,
        rusqlite::version()
    );
    println!(
        "database: {} ({} messages, {} rooms, first room {} messages)",
        path.display(),
        args.messages,
        args.rooms,
        args.big_room_messages
    );

    let mut corpus = Corpus::new(args.vocabulary, args.seed);
    let rooms = corpus.rooms(&room_sizes);

    let insert = measure_insert(&path, &mut corpus, &rooms, &room_sizes, args.batch)?;
    print_insert(&insert);
    let database_bytes = database_bytes(&path);
    println!(
        "database size: {:.1} MiB",
        database_bytes as f64 / 1024.0 / 1024.0
    );

    let open = measure_open(&path, rooms[0].id, room_sizes[0], args.opens)?;
    print_open(&open);

    let search = measure_search(&path, &corpus, args.searches, args.seed)?;
    print_search(&search);

    let memory = measure_memory(&path)?;
    print_memory(&memory);

    let room_list = measure_room_list(&path, &rooms, args.messages)?;
    print_room_list(&room_list);

    let load_average_end = load_average_1m();
    println!(
        "load average (1 min): {} at start, {} at end",
        format_load(load_average_start),
        format_load(load_average_end)
    );

    let report = Report {
        machine,
        sqlite_version: rusqlite::version(),
        load_average_start,
        load_average_end,
        parameters: Parameters {
            messages: args.messages,
            rooms: args.rooms,
            big_room_messages: args.big_room_messages,
            batch: args.batch,
            vocabulary: args.vocabulary,
            opens: args.opens,
            searches: args.searches,
            seed: args.seed,
            database_dir: parent,
        },
        database_bytes,
        insert,
        open,
        search,
        memory,
        room_list,
    };
    if let Some(json) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(json, text + "\n")
            .with_context(|| format!("failed to write {}", json.display()))?;
        println!("wrote {}", json.display());
    }
    if args.keep {
        println!("kept {}", folder.keep().display());
    }
    Ok(())
}

/// Stores every room and its messages, timing the `store_messages` calls.
fn measure_insert(
    path: &Path,
    corpus: &mut Corpus,
    rooms: &[Room],
    room_sizes: &[usize],
    batch: usize,
) -> Result<InsertReport> {
    let wall_start = Instant::now();
    let (cache, _) = Cache::open(path)?;
    for room in rooms {
        cache.upsert_room(room)?;
    }

    let mut stored = vec![0usize; rooms.len()];
    let mut previous: Vec<Option<Message>> = vec![None; rooms.len()];
    let mut batch_times = Vec::new();
    let mut body_chars = 0usize;
    let mut messages = Vec::with_capacity(batch);
    while stored
        .iter()
        .zip(room_sizes)
        .any(|(done, size)| done < size)
    {
        for (index, room) in rooms.iter().enumerate() {
            let count = batch.min(room_sizes[index] - stored[index]);
            if count == 0 {
                continue;
            }
            messages.clear();
            for offset in 1..=count {
                let seq = (stored[index] + offset) as i64;
                let message = corpus.message(room.id, seq, previous[index].as_ref());
                body_chars += message.body.chars().count();
                previous[index] = Some(message.clone());
                messages.push(message);
            }
            let complete = stored[index] == 0;

            let start = Instant::now();
            cache.store_messages(room.id, &messages, complete)?;
            batch_times.push(start.elapsed());

            stored[index] += count;
        }
    }
    drop(cache);

    let total: usize = stored.iter().sum();
    let store_secs = batch_times.iter().map(Duration::as_secs_f64).sum::<f64>();
    batch_times.sort();
    Ok(InsertReport {
        messages: total,
        store_secs,
        wall_secs: wall_start.elapsed().as_secs_f64(),
        messages_per_sec: total as f64 / store_secs,
        mean_body_chars: body_chars as f64 / total as f64,
        batch_p50_ms: milliseconds(percentile(&batch_times, 0.50)),
        batch_p95_ms: milliseconds(percentile(&batch_times, 0.95)),
        batch_max_ms: milliseconds(percentile(&batch_times, 1.0)),
    })
}

/// Times `Cache::open` and the first page of the room, on a new `Cache` per run.
fn measure_open(
    path: &Path,
    room_id: Uuid,
    room_messages: usize,
    runs: usize,
) -> Result<OpenReport> {
    let expected = room_messages.min(PAGE_SIZE as usize);
    let mut opens = Vec::with_capacity(runs);
    let mut pages = Vec::with_capacity(runs);
    let mut totals = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let (cache, moved) = Cache::open(path)?;
        let opened = Instant::now();
        let page = cache.history(room_id, None, PAGE_SIZE)?;
        let paged = Instant::now();

        ensure!(
            moved.is_none(),
            "Cache::open found the file unreadable and rebuilt it"
        );
        ensure!(
            page.len() == expected,
            "the first page has {} messages, expected {expected}",
            page.len()
        );
        ensure!(
            page[0].seq == room_messages as i64,
            "the first page starts at seq {}, expected the newest, {room_messages}",
            page[0].seq
        );
        opens.push(opened - start);
        pages.push(paged - opened);
        totals.push(paged - start);
        drop(cache);
    }
    opens.sort();
    pages.sort();
    totals.sort();
    Ok(OpenReport {
        room_messages,
        runs,
        open_median_ms: milliseconds(percentile(&opens, 0.5)),
        first_page_median_ms: milliseconds(percentile(&pages, 0.5)),
        total_median_ms: milliseconds(percentile(&totals, 0.5)),
        total_min_ms: milliseconds(percentile(&totals, 0.0)),
        total_max_ms: milliseconds(percentile(&totals, 1.0)),
    })
}

/// Times `search` for random whole words and prefixes from the vocabulary.
fn measure_search(path: &Path, corpus: &Corpus, queries: usize, seed: u64) -> Result<SearchReport> {
    let (cache, _) = Cache::open(path)?;
    let cached_messages = cache.message_count()?;
    // A seed of its own, so the queries do not change with the number of messages.
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5EA2_C400);

    let mut all = Vec::with_capacity(queries);
    let mut words = Vec::new();
    let mut prefixes = Vec::new();
    let mut hit_total = 0usize;
    let mut queries_without_hits = 0usize;
    for _ in 0..queries {
        let word = &corpus.vocabulary[rng.random_range(0..corpus.vocabulary.len())];
        let is_prefix = rng.random_bool(0.25);
        let query: String = if is_prefix {
            word.chars().take(PREFIX_CHARS).collect()
        } else {
            word.clone()
        };

        let start = Instant::now();
        let hits = cache.search(&query, SEARCH_LIMIT)?;
        let elapsed = start.elapsed();

        hit_total += hits.len();
        if hits.is_empty() {
            queries_without_hits += 1;
        }
        all.push(elapsed);
        if is_prefix {
            prefixes.push(elapsed);
        } else {
            words.push(elapsed);
        }
    }

    let most_frequent_word = corpus.vocabulary[0].clone();
    let mut frequent = Vec::with_capacity(REPEAT_RUNS);
    for _ in 0..REPEAT_RUNS {
        let start = Instant::now();
        let hits = cache.search(&most_frequent_word, SEARCH_LIMIT)?;
        frequent.push(start.elapsed());
        ensure!(
            hits.len() == SEARCH_LIMIT as usize || hits.len() as u64 == cached_messages,
            "the search for {most_frequent_word:?} returned only {} hits",
            hits.len()
        );
    }

    all.sort();
    words.sort();
    prefixes.sort();
    frequent.sort();
    Ok(SearchReport {
        queries,
        cached_messages,
        p50_ms: milliseconds(percentile(&all, 0.50)),
        p95_ms: milliseconds(percentile(&all, 0.95)),
        max_ms: milliseconds(percentile(&all, 1.0)),
        word_queries: words.len(),
        word_p50_ms: milliseconds(percentile(&words, 0.50)),
        word_p95_ms: milliseconds(percentile(&words, 0.95)),
        prefix_queries: prefixes.len(),
        prefix_p50_ms: milliseconds(percentile(&prefixes, 0.50)),
        prefix_p95_ms: milliseconds(percentile(&prefixes, 0.95)),
        mean_hits: hit_total as f64 / queries as f64,
        queries_without_hits,
        most_frequent_word,
        most_frequent_word_median_ms: milliseconds(percentile(&frequent, 0.5)),
    })
}

/// Runs this binary with `--memory-probe` and reads its report from stdout.
fn measure_memory(path: &Path) -> Result<MemoryReport> {
    let binary = std::env::current_exe().context("failed to find the benchmark's binary")?;
    let output = Command::new(&binary)
        .arg("--memory-probe")
        .arg(path)
        .output()
        .with_context(|| format!("failed to run {}", binary.display()))?;
    if !output.status.success() {
        bail!(
            "the memory probe failed with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "the memory probe printed an invalid report: {}",
            String::from_utf8_lossy(&output.stdout).trim()
        )
    })
}

/// Opens the cache as the app does at start, reads every room's first page, and
/// records this process's memory after each step.
fn probe_memory(path: &Path) -> Result<MemoryReport> {
    let rss_before_open_kib = read_status_kib("VmRSS:")?;
    let (cache, moved) = Cache::open(path)?;
    ensure!(
        moved.is_none(),
        "Cache::open found the file unreadable and rebuilt it"
    );
    let rss_after_open_kib = read_status_kib("VmRSS:")?;

    let rooms = cache.rooms()?;
    let rss_after_room_list_kib = read_status_kib("VmRSS:")?;

    let mut messages_read = 0;
    for cached in &rooms {
        messages_read += cache.history(cached.room.id, None, PAGE_SIZE)?.len();
    }
    let rss_after_first_pages_kib = read_status_kib("VmRSS:")?;

    Ok(MemoryReport {
        rss_before_open_kib,
        rss_after_open_kib,
        rss_after_room_list_kib,
        rss_after_first_pages_kib,
        peak_rss_kib: read_status_kib("VmHWM:")?,
        rooms_read: rooms.len(),
        messages_read,
    })
}

/// Times `rooms()` with every message unread, then with every room marked as read.
fn measure_room_list(path: &Path, rooms: &[Room], messages: usize) -> Result<RoomListReport> {
    let (cache, _) = Cache::open(path)?;

    let mut unread_times = Vec::with_capacity(REPEAT_RUNS);
    for _ in 0..REPEAT_RUNS {
        let start = Instant::now();
        let listed = cache.rooms()?;
        unread_times.push(start.elapsed());
        let unread: u64 = listed.iter().map(|cached| u64::from(cached.unread)).sum();
        ensure!(
            unread == messages as u64,
            "rooms() counts {unread} unread messages, expected {messages}"
        );
    }

    for room in rooms {
        cache.set_read(room.id, room.last_seq)?;
    }
    let mut read_times = Vec::with_capacity(REPEAT_RUNS);
    for _ in 0..REPEAT_RUNS {
        let start = Instant::now();
        let listed = cache.rooms()?;
        read_times.push(start.elapsed());
        ensure!(
            listed.iter().all(|cached| cached.unread == 0),
            "rooms() counts unread messages after every room was marked as read"
        );
    }

    unread_times.sort();
    read_times.sort();
    Ok(RoomListReport {
        rooms: rooms.len(),
        all_unread_median_ms: milliseconds(percentile(&unread_times, 0.5)),
        all_read_median_ms: milliseconds(percentile(&read_times, 0.5)),
    })
}

fn print_insert(report: &InsertReport) {
    println!(
        "insert: {} messages in {:.1} s of store_messages ({:.1} s with generation): \
         {:.0} messages/s; batch p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms; \
         mean body {:.0} chars",
        report.messages,
        report.store_secs,
        report.wall_secs,
        report.messages_per_sec,
        report.batch_p50_ms,
        report.batch_p95_ms,
        report.batch_max_ms,
        report.mean_body_chars
    );
}

fn print_open(report: &OpenReport) {
    println!(
        "open room of {} messages: median {:.1} ms (Cache::open {:.1} ms + first page {:.2} ms), \
         min {:.1} ms, max {:.1} ms, {} runs",
        report.room_messages,
        report.total_median_ms,
        report.open_median_ms,
        report.first_page_median_ms,
        report.total_min_ms,
        report.total_max_ms,
        report.runs
    );
}

fn print_search(report: &SearchReport) {
    println!(
        "search over {} messages: p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms ({} queries, \
         mean {:.1} hits, {} without hits)",
        report.cached_messages,
        report.p50_ms,
        report.p95_ms,
        report.max_ms,
        report.queries,
        report.mean_hits,
        report.queries_without_hits
    );
    println!(
        "  whole words: p50 {:.2} ms, p95 {:.2} ms ({} queries); \
         {PREFIX_CHARS}-letter prefixes: p50 {:.2} ms, p95 {:.2} ms ({} queries)",
        report.word_p50_ms,
        report.word_p95_ms,
        report.word_queries,
        report.prefix_p50_ms,
        report.prefix_p95_ms,
        report.prefix_queries
    );
    println!(
        "  most frequent word {:?}: median {:.1} ms",
        report.most_frequent_word, report.most_frequent_word_median_ms
    );
}

fn print_memory(report: &MemoryReport) {
    println!(
        "memory: VmRSS {:.1} MiB before open, {:.1} MiB after open, {:.1} MiB after rooms(), \
         {:.1} MiB after {} first pages ({} messages); peak VmHWM {:.1} MiB",
        mebibytes(report.rss_before_open_kib),
        mebibytes(report.rss_after_open_kib),
        mebibytes(report.rss_after_room_list_kib),
        mebibytes(report.rss_after_first_pages_kib),
        report.rooms_read,
        report.messages_read,
        mebibytes(report.peak_rss_kib)
    );
}

fn print_room_list(report: &RoomListReport) {
    println!(
        "rooms() of {} rooms: median {:.1} ms with every message unread, {:.2} ms with all read",
        report.rooms, report.all_unread_median_ms, report.all_read_median_ms
    );
}

/// Generator of rooms and messages from one seeded random number generator.
struct Corpus {
    vocabulary: Vec<String>,
    /// Cumulative Zipf probabilities of `vocabulary`, in the same order.
    cumulative: Vec<f64>,
    users: Vec<UserRef>,
    rng: StdRng,
    /// Time of the last generated message, in Unix milliseconds.
    clock_ms: u64,
}

impl Corpus {
    fn new(vocabulary_size: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let vocabulary = generate_vocabulary(&mut rng, vocabulary_size);

        let mut cumulative = Vec::with_capacity(vocabulary_size);
        let mut sum = 0.0;
        for rank in 1..=vocabulary_size {
            sum += 1.0 / rank as f64;
            cumulative.push(sum);
        }
        for value in &mut cumulative {
            *value /= sum;
        }

        let users = (0..USER_COUNT)
            .map(|index| {
                let username = format!("{}{index}", vocabulary[vocabulary_size - 1 - index]);
                UserRef {
                    id: random_uuid(&mut rng),
                    display_name: capitalize(&username),
                    username,
                }
            })
            .collect();
        Corpus {
            vocabulary,
            cumulative,
            users,
            rng,
            clock_ms: START_UNIX_MS,
        }
    }

    /// Builds public rooms under one team, with `last_seq` set to their message counts.
    fn rooms(&mut self, room_sizes: &[usize]) -> Vec<Room> {
        let team_id = random_uuid(&mut self.rng);
        room_sizes
            .iter()
            .enumerate()
            .map(|(index, &size)| {
                let name = format!("room-{index:02}");
                Room {
                    id: random_uuid(&mut self.rng),
                    path: format!("team.{name}"),
                    name,
                    kind: RoomKind::Public,
                    parent_id: Some(team_id),
                    topic: format!("Talk about {}", self.word()),
                    owner_id: Some(self.users[0].id),
                    has_password: false,
                    member_count: USER_COUNT as u32,
                    last_seq: size as i64,
                    role: Some(Role::Member),
                    created_at: time_from_ms(START_UNIX_MS),
                    call: None,
                }
            })
            .collect()
    }

    /// Generates the message of the room at `seq`, sent 0.5 to 30 seconds after the last
    /// message generated.
    fn message(&mut self, room_id: Uuid, seq: i64, previous: Option<&Message>) -> Message {
        self.clock_ms += self.rng.random_range(500..30_000);
        let created_at = time_from_ms(self.clock_ms);
        let author = self.users[self.rng.random_range(0..self.users.len())].clone();

        let mut mentions = Vec::new();
        let mut body = String::new();
        if self.rng.random_bool(0.05) {
            let mentioned = &self.users[self.rng.random_range(0..self.users.len())];
            body.push('@');
            body.push_str(&mentioned.username);
            body.push(' ');
            mentions.push(Mention::User {
                user_id: mentioned.id,
                username: mentioned.username.clone(),
            });
        }
        self.append_sentence(&mut body);

        let reply_to = previous
            .filter(|_| self.rng.random_bool(0.05))
            .map(|parent| ReplyPreview {
                id: parent.id,
                author: parent.author.clone(),
                excerpt: excerpt(&parent.body, 100),
                deleted: false,
            });
        let reactions = if self.rng.random_bool(0.10) {
            self.reactions()
        } else {
            Vec::new()
        };
        let attachments = if self.rng.random_bool(0.02) {
            vec![self.attachment()]
        } else {
            Vec::new()
        };
        let edited_at = self
            .rng
            .random_bool(0.03)
            .then(|| time_from_ms(self.clock_ms + 60_000));

        Message {
            id: uuid_v7(&mut self.rng, self.clock_ms),
            room_id,
            seq,
            author,
            html: render_html(&body),
            body,
            mentions,
            reply_to,
            reply_count: 0,
            reactions,
            attachments,
            client_id: None,
            pinned: None,
            deleted: false,
            created_at,
            edited_at,
        }
    }

    /// Appends Zipf-distributed words until the body has at least a random 60 to 140
    /// characters, then a final `.` or `?`.
    fn append_sentence(&mut self, body: &mut String) {
        let target = self.rng.random_range(60..=140);
        let mut first = true;
        while body.len() < target {
            if !first {
                body.push(' ');
            }
            let word = self.word();
            if first {
                body.push_str(&capitalize(&word));
                first = false;
            } else {
                body.push_str(&word);
            }
        }
        body.push(if self.rng.random_bool(0.2) { '?' } else { '.' });
    }

    fn reactions(&mut self) -> Vec<Reaction> {
        let emojis = ["👍", "🎉", "😄", "👀"];
        let count = self.rng.random_range(1..=2);
        emojis[..count]
            .iter()
            .map(|emoji| {
                let voters = self.rng.random_range(1..=4);
                Reaction {
                    emoji: (*emoji).to_owned(),
                    count: voters as u32,
                    user_ids: self.users[..voters].iter().map(|user| user.id).collect(),
                }
            })
            .collect()
    }

    fn attachment(&mut self) -> Attachment {
        let id = uuid_v7(&mut self.rng, self.clock_ms);
        Attachment {
            id,
            name: format!("{}.png", self.word()),
            size: self.rng.random_range(10_000..5_000_000),
            mime: "image/png".to_owned(),
            url: format!("/api/files/{id}"),
            thumbnail_url: Some(format!("/api/files/{id}/thumbnail")),
        }
    }

    /// Draws a word from the vocabulary with the Zipf distribution.
    fn word(&mut self) -> String {
        let draw: f64 = self.rng.random();
        let index = self
            .cumulative
            .partition_point(|&value| value < draw)
            .min(self.vocabulary.len() - 1);
        self.vocabulary[index].clone()
    }
}

/// Generates `size` distinct lowercase words of two to four syllables, in random order.
fn generate_vocabulary(rng: &mut StdRng, size: usize) -> Vec<String> {
    const CONSONANTS: [&str; 24] = [
        "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
        "ch", "sh", "th", "br", "tr", "st",
    ];
    const VOWELS: [&str; 8] = ["a", "e", "i", "o", "u", "ai", "ou", "ea"];
    const ENDINGS: [&str; 5] = ["n", "s", "r", "t", "l"];

    let mut seen = HashSet::with_capacity(size);
    let mut words = Vec::with_capacity(size);
    while words.len() < size {
        let syllables = match rng.random_range(0..100) {
            0..45 => 2,
            45..85 => 3,
            _ => 4,
        };
        let mut word = String::new();
        for _ in 0..syllables {
            word.push_str(CONSONANTS[rng.random_range(0..CONSONANTS.len())]);
            word.push_str(VOWELS[rng.random_range(0..VOWELS.len())]);
        }
        if rng.random_bool(0.3) {
            word.push_str(ENDINGS[rng.random_range(0..ENDINGS.len())]);
        }
        if seen.insert(word.clone()) {
            words.push(word);
        }
    }
    words
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn random_uuid(rng: &mut StdRng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

/// Builds a version 7 UUID for the time `unix_ms`, as the server gives messages.
fn uuid_v7(rng: &mut StdRng, unix_ms: u64) -> Uuid {
    uuid::Builder::from_unix_timestamp_millis(unix_ms, &rng.random()).into_uuid()
}

fn time_from_ms(unix_ms: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .expect("generated times are within the range of OffsetDateTime")
}

/// Returns the size of the database file and its write-ahead log, in bytes.
fn database_bytes(path: &Path) -> u64 {
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    [path, wal.as_path()]
        .iter()
        .filter_map(|file| std::fs::metadata(file).ok())
        .map(|metadata| metadata.len())
        .sum()
}

/// Reads the 1-minute load average of the machine from `/proc/loadavg`.
fn load_average_1m() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn format_load(load: Option<f64>) -> String {
    load.map_or_else(|| "unknown".to_owned(), |value| format!("{value:.2}"))
}

/// Reads a field such as `VmRSS:` of `/proc/self/status`, in KiB.
fn read_status_kib(field: &str) -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("failed to read /proc/self/status")?;
    parse_kib_field(&status, field)
        .with_context(|| format!("/proc/self/status has no field {field}"))
}

/// Parses a `Name:   1234 kB` line of a `/proc` file.
fn parse_kib_field(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
}

/// Returns the nearest-rank percentile of sorted samples. A `fraction` of 0 gives the
/// minimum and 1 the maximum.
fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn mebibytes(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
