//! Call view benchmark: the picture transport of the desktop app's call view, from
//! the shell's picture board to the drawn canvas, in a real call.
//!
//! Inside a network namespace of its own (see `roomler_e2e::netns`) it starts
//! `roomler-server`, which starts its own Janus, and the release app under Xvfb
//! and tauri-driver. The other participants are `roomler call --pre-encoded` load
//! bots. They send a loop encoded once (three VP8 simulcast layers, by default of
//! 320x240, 160x120 and 80x60, or of a camera's size with `--bot-video-size
//! 640x480`) and receive nothing. The app's user joins from the pre-join screen
//! with the test pattern (320x240) and the test tone. For each count of `--others`
//! the bench adds bots until that many others are in the call, so that the grid's
//! page shows them and the self view. It waits until every tile shows the
//! simulcast layer of its size and measures two windows of `--measure-secs`:
//!
//! - drawn: the page as it is. A recorder installed as `window.roomlerFrameProbe`
//!   (see `ui/src/composables/tile-frames.ts`) receives every fetch of a picture.
//!   From those the bench computes the time from the fetch's start to the
//!   ArrayBuffer, the time from there to the end of `putImageData`, the pictures
//!   drawn per second per tile and the bytes moved per second.
//! - paused: the same page, with `window.fetch` returning 204 for the picture URLs
//!   at once. The tiles keep receiving and decoding, but no picture crosses to
//!   the page, so the difference in CPU between the two windows is the cost of the
//!   transport and the drawing.
//!
//! In each window it reads the CPU time of the app, of WebKit's web and network
//! processes and of Xvfb from `/proc`, and their memory at the end. After the last
//! count it switches to the speaker view, whose one large tile receives the
//! full-size layer, and measures that the same way.
//!
//! Run it as root, after building the release binaries:
//!
//! ```text
//! npm --prefix ui ci && npm --prefix ui run build
//! cargo build --release -p roomler-desktop --features custom-protocol
//! cargo build --release -p roomler-server -p roomler-client -p roomler-e2e
//! target/release/call_view_bench --json call-view-bench.json
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use roomler_e2e::call_bots::{CallBots, Participant, enter_namespace, start_call_server};
use roomler_e2e::desktop::{
    DesktopApp, LaunchOptions, Prerequisites, UI_TIMEOUT, Xvfb, descendants, process_name,
    process_pss_kib,
};
use roomler_e2e::{MachineInfo, load_average_1m, process_cpu_secs, process_rss_kib};
use serde::Serialize;
use serde_json::Value;

const ROOM: &str = "bench";
/// Time for the page to show a step's new participants with the layer of their
/// size: joins, ICE, DTLS and a keyframe of the new layer, on a loaded machine.
const DRAW_TIMEOUT: Duration = Duration::from_secs(120);
/// Grid pages of at most this many tiles receive the full-size layer, and of at
/// most [`GRID_MEDIUM_TILES`] the half-size one; fuller pages the lowest. The
/// same limits as `GRID_LARGE_TILES` and `GRID_MEDIUM_TILES` in `ui/src/lib/call.ts`.
const GRID_LARGE_TILES: u32 = 4;
const GRID_MEDIUM_TILES: u32 = 9;

/// Installs the recorder that `useTileFrames` calls after each fetch.
const INSTALL_PROBE: &str = "window.roomlerFrameProbe = { samples: [], \
     record(tile, status, fetchMs, drawMs, bytes) { this.samples.push([tile, status, fetchMs, drawMs, bytes]); } }; \
     return true;";
/// Removes the recorder and returns its samples.
const TAKE_PROBE: &str = "const probe = window.roomlerFrameProbe; delete window.roomlerFrameProbe; \
     return probe ? probe.samples : null;";
/// Makes every fetch of a picture return 204 at once, as if no newer picture existed.
const PAUSE_PICTURES: &str = "if (!window.roomlerUnpausedFetch) { \
       const fetch = window.fetch; window.roomlerUnpausedFetch = fetch; \
       window.fetch = (input, init) => String(input).startsWith('roomler-frame:') \
         ? Promise.resolve(new Response(null, { status: 204 })) : fetch(input, init); } \
     return true;";
const RESUME_PICTURES: &str = "if (window.roomlerUnpausedFetch) { \
       window.fetch = window.roomlerUnpausedFetch; delete window.roomlerUnpausedFetch; } \
     return true;";
/// Lists the call panel's tiles: the tile name, and the canvas's size while it
/// shows a picture, else 0 by 0.
const LIST_TILES: &str = "return [...document.querySelectorAll('[data-test=call-panel] [data-test=call-tile]')].map(tile => { \
       const canvas = tile.querySelector('canvas'); \
       const visible = !!canvas && canvas.style.display !== 'none'; \
       return [tile.dataset.tile, visible ? canvas.width : 0, visible ? canvas.height : 0, \
               tile.classList.contains('call-panel__featured')]; });";

#[derive(Debug, Parser)]
#[command(about = "Measures how the desktop app's call view moves pictures to the page")]
struct Args {
    /// Other participants in the call at each step, rising. The grid's page shows
    /// them and the self view.
    #[arg(long, value_delimiter = ',', default_values_t = [1u32, 4, 9, 24],
        value_parser = clap::value_parser!(u32).range(1..=24))]
    others: Vec<u32>,
    /// Size of the bots' full-size simulcast layer, WIDTHxHEIGHT; the lower layers
    /// are a half and a quarter of it.
    #[arg(long, value_name = "WIDTHxHEIGHT", default_value = "320x240")]
    bot_video_size: String,
    /// Seconds between a step's last tile showing its layer and the measurement.
    #[arg(long, default_value_t = 5)]
    settle_secs: u64,
    /// Seconds that each window lasts.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    measure_secs: u64,
    /// Skips the paused windows, which halves the run.
    #[arg(long)]
    no_paused: bool,
    /// Folder of the binaries (roomler-server, roomler, roomler-desktop); default:
    /// this bench's own folder, e.g. target/release.
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Writes the report as JSON to this file too.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: MachineInfo,
    load_average_1m_before: Option<f64>,
    bot_video_size: String,
    measure_secs: u64,
    windows: Vec<Window>,
}

/// One measured window.
#[derive(Debug, Serialize)]
struct Window {
    /// `grid` or `speaker`.
    layout: &'static str,
    /// Whether the pictures were paused (see the module documentation).
    paused: bool,
    /// Tiles in the call panel, the self view included.
    tiles: u32,
    seconds: f64,
    load_average_1m: Option<f64>,
    /// Busy share of all CPUs of the machine, in percent of one CPU.
    machine_cpu_percent: f64,
    /// Each tile's picture size at the end of the window, e.g. `80x60`.
    picture_sizes: BTreeMap<String, String>,
    /// The other participants' tiles that show a picture.
    remote: TileGroup,
    /// The self view.
    local: TileGroup,
    /// Bytes of pictures that reached the page per second, all tiles.
    bytes_per_second: f64,
    processes: Vec<ProcessUse>,
}

/// What a group of tiles received in a window.
#[derive(Debug, Serialize, Default)]
struct TileGroup {
    tiles: u32,
    pictures: u64,
    /// Fetches that found no newer picture (204).
    empty_fetches: u64,
    pictures_per_second_mean: f64,
    /// Of the tile that drew the fewest.
    pictures_per_second_min: f64,
    /// From the fetch's start to the ArrayBuffer.
    fetch_ms: Percentiles,
    /// From the ArrayBuffer to the end of `putImageData`.
    draw_ms: Percentiles,
    bytes_per_second: f64,
}

#[derive(Debug, Serialize, Default)]
struct Percentiles {
    mean: f64,
    p50: f64,
    p95: f64,
}

#[derive(Debug, Serialize)]
struct ProcessUse {
    name: String,
    /// CPU time per wall time over the window, in percent of one CPU.
    cpu_percent: f64,
    rss_kib: u64,
    pss_kib: u64,
}

/// One fetch that the page's recorder received.
#[derive(Debug)]
struct Sample {
    tile: String,
    status: u64,
    fetch_ms: f64,
    draw_ms: f64,
    bytes: u64,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Args::parse();
    if let Some(outer_run) = enter_namespace("call_view_bench") {
        return outer_run;
    }
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    match runtime.block_on(run(&args)) {
        Ok(report) => {
            print_tables(&report);
            if let Some(path) = &args.json {
                let written = serde_json::to_string_pretty(&report)
                    .map_err(anyhow::Error::from)
                    .and_then(|json| {
                        std::fs::write(path, json)
                            .with_context(|| format!("failed to write {}", path.display()))
                    });
                if let Err(error) = written {
                    eprintln!("call_view_bench: {error:#}");
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("call_view_bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<Report> {
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the bench has no folder")?
            .to_path_buf(),
    };
    let Some(prerequisites) = Prerequisites::find(&bin_dir.join("roomler-desktop"))? else {
        bail!("the desktop app cannot run here; see the reason above");
    };
    let load_before = load_average_1m();
    let xvfb = Xvfb::start(&prerequisites.xvfb).await?;
    let (server, api) = start_call_server(bin_dir.join("roomler-server"), ROOM).await?;
    let mut call = CallBots::new(api, &bin_dir.join("roomler"), ROOM)?;
    let (bot_width, bot_height) = parse_size(&args.bot_video_size)?;
    let bot_flags = [
        "--pre-encoded",
        "--video-size",
        &args.bot_video_size,
        "--receive-video",
        "0",
    ];
    // The first bot starts the call, so the app's room shows it.
    let mut bots: Vec<Participant> = vec![call.join("bot", &bot_flags).await?];

    let profile = call.user("viewer").await?;
    let logs = tempfile::Builder::new()
        .prefix("roomler-call-view-bench-")
        .tempdir()?;
    let log_path = logs.path().join("app.log");
    let launch = LaunchOptions {
        args: vec!["--profile".into(), profile.display().to_string()],
        env: vec![
            ("ROOMLER_TOKEN_STORE".into(), "file".into()),
            (
                "DBUS_SESSION_BUS_ADDRESS".into(),
                format!("unix:path={}", logs.path().join("no-bus").display()),
            ),
        ],
        log_path: Some(log_path.clone()),
    };
    let app = DesktopApp::launch(&prerequisites, xvfb.display(), &launch).await?;
    let bench = Bench {
        app,
        xvfb_pid: xvfb.pid().context("Xvfb has exited")?,
        measure: Duration::from_secs(args.measure_secs),
        paused_too: !args.no_paused,
    };
    let result = async {
        bench.join_call().await?;
        let mut windows = Vec::new();
        for &others in &args.others {
            while bots.len() < others as usize {
                bots.push(call.join("bot", &bot_flags).await?);
            }
            let tiles = others + 1;
            let (width, height) = layer_size(bot_width, bot_height, grid_tile_size(tiles));
            bench
                .wait_for_layer(
                    &format!("{others} others show {width}x{height}"),
                    |listed| {
                        let remote: Vec<_> =
                            listed.iter().filter(|tile| tile.0 != "local").collect();
                        remote.len() == others as usize
                            && remote
                                .iter()
                                .all(|tile| tile.1 == width && tile.2 == height)
                    },
                )
                .await?;
            tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
            windows.extend(bench.measure_both("grid", tiles).await?);
        }
        ensure!(
            bench.click("[data-test=call-layout]").await?,
            "the call view has no layout button"
        );
        bench
            .wait_for_layer(
                &format!("the speaker view shows {bot_width}x{bot_height}"),
                |listed| {
                    listed
                        .iter()
                        .any(|tile| tile.3 && tile.1 == bot_width && tile.2 == bot_height)
                },
            )
            .await?;
        tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
        let tiles = bots.len() as u32 + 1;
        windows.extend(bench.measure_both("speaker", tiles).await?);
        anyhow::Ok(windows)
    }
    .await;
    if result.is_err() {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        eprintln!(
            "last lines of the app log:\n{}",
            lines[lines.len().saturating_sub(40)..].join("\n")
        );
    }
    bench.app.close().await?;
    drop(bots);
    server.terminate().await?;
    Ok(Report {
        machine: MachineInfo::read(),
        load_average_1m_before: load_before,
        bot_video_size: args.bot_video_size.clone(),
        measure_secs: args.measure_secs,
        windows: result?,
    })
}

/// The simulcast layer a grid tile receives on a page of `tiles` tiles, as
/// `tileSize` in `ui/src/lib/call.ts` picks it.
#[derive(Debug, Clone, Copy)]
enum Layer {
    Full,
    Half,
    Quarter,
}

fn grid_tile_size(tiles: u32) -> Layer {
    if tiles <= GRID_LARGE_TILES {
        Layer::Full
    } else if tiles <= GRID_MEDIUM_TILES {
        Layer::Half
    } else {
        Layer::Quarter
    }
}

/// Returns the picture size of `layer` of a bot that sends `width` x `height`, as
/// the simulcast encoder scales it: each lower layer halves the one above, rounded
/// down to even sizes.
fn layer_size(width: u32, height: u32, layer: Layer) -> (u32, u32) {
    let halvings = match layer {
        Layer::Full => 0,
        Layer::Half => 1,
        Layer::Quarter => 2,
    };
    (0..halvings).fold((width, height), |(width, height), _| {
        ((width / 2) & !1, (height / 2) & !1)
    })
}

/// Parses a size such as `640x480`.
fn parse_size(text: &str) -> Result<(u32, u32)> {
    let parsed = text
        .split_once('x')
        .and_then(|(width, height)| Some((width.parse().ok()?, height.parse().ok()?)));
    parsed.with_context(|| format!("{text:?} is not a size; give WIDTHxHEIGHT, e.g. 640x480"))
}

/// A tile as [`LIST_TILES`] returns it: name, picture width and height (0 while
/// hidden), and whether it is the speaker view's large tile.
type ListedTile = (String, u32, u32, bool);

struct Bench {
    app: DesktopApp,
    xvfb_pid: u32,
    measure: Duration,
    paused_too: bool,
}

impl Bench {
    /// Clicks the element that matches `selector` from a script, which works on an
    /// element clicked before too. Returns whether there was one.
    async fn click(&self, selector: &str) -> Result<bool> {
        let script = format!(
            "const element = document.querySelector({selector:?}); element?.click(); return !!element;"
        );
        Ok(self.app.client().execute(&script, Vec::new()).await? == Value::Bool(true))
    }

    /// Opens the room, then its call's pre-join screen, and joins with the test
    /// pattern and tone once the preview shows a picture.
    async fn join_call(&self) -> Result<()> {
        let app = &self.app;
        app.wait_until(
            &format!("the room {ROOM} is listed"),
            &format!(
                "const item = [...document.querySelectorAll('[data-test=room-item]')].find(e => e.textContent.includes({ROOM:?})); item?.click(); return !!item;"
            ),
            UI_TIMEOUT,
        )
        .await?;
        app.wait_until(
            "the room shows its call",
            "const button = document.querySelector('[data-test=open-call]'); button?.click(); return !!button;",
            UI_TIMEOUT,
        )
        .await?;
        app.wait_until(
            "the pre-join preview shows pictures",
            "const canvas = document.querySelector('[data-test=prejoin] [data-tile=local] canvas'); \
             return !!canvas && canvas.width > 0 && canvas.style.display !== 'none';",
            UI_TIMEOUT,
        )
        .await?;
        ensure!(
            self.click("[data-test=prejoin-join]").await?,
            "the pre-join screen has no join button"
        );
        app.wait_for("[data-test=call-panel]", UI_TIMEOUT).await?;
        Ok(())
    }

    async fn list_tiles(&self) -> Result<Vec<ListedTile>> {
        let value = self.app.client().execute(LIST_TILES, Vec::new()).await?;
        serde_json::from_value(value).context("the tile list has an unexpected shape")
    }

    /// Waits until the tiles satisfy `ready`, for up to [`DRAW_TIMEOUT`].
    /// `condition` describes it for the log and the error.
    async fn wait_for_layer(
        &self,
        condition: &str,
        ready: impl Fn(&[ListedTile]) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + DRAW_TIMEOUT;
        loop {
            let listed = self.list_tiles().await?;
            if ready(&listed) {
                eprintln!("{condition}");
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "timed out after {DRAW_TIMEOUT:?} waiting until {condition}; tiles: {listed:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Measures a drawn window and, unless turned off, a paused one.
    async fn measure_both(&self, layout: &'static str, tiles: u32) -> Result<Vec<Window>> {
        let mut windows = vec![self.measure(layout, tiles, false).await?];
        if self.paused_too {
            ensure!(
                self.app
                    .client()
                    .execute(PAUSE_PICTURES, Vec::new())
                    .await?
                    == Value::Bool(true),
                "pausing the pictures failed"
            );
            // Lets fetches that started before the pause end.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let paused = self.measure(layout, tiles, true).await;
            self.app
                .client()
                .execute(RESUME_PICTURES, Vec::new())
                .await?;
            windows.push(paused?);
        }
        Ok(windows)
    }

    async fn measure(&self, layout: &'static str, tiles: u32, paused: bool) -> Result<Window> {
        let load = load_average_1m();
        let processes = self.processes()?;
        ensure!(
            self.app.client().execute(INSTALL_PROBE, Vec::new()).await? == Value::Bool(true),
            "installing the recorder failed"
        );
        let started = Instant::now();
        let machine_before = machine_cpu_ticks()?;
        let cpu_before: Vec<f64> = processes
            .iter()
            .map(|(pid, _)| process_cpu_secs(*pid))
            .collect::<Result<_>>()?;

        tokio::time::sleep(self.measure).await;

        let recorded = self.app.client().execute(TAKE_PROBE, Vec::new()).await?;
        let seconds = started.elapsed().as_secs_f64();
        let machine_after = machine_cpu_ticks()?;
        let mut used = Vec::new();
        for ((pid, name), before) in processes.iter().zip(cpu_before) {
            used.push(ProcessUse {
                name: name.clone(),
                cpu_percent: 100.0 * (process_cpu_secs(*pid)? - before) / seconds,
                rss_kib: process_rss_kib(*pid)?,
                pss_kib: process_pss_kib(*pid)?,
            });
        }

        let samples = parse_samples(&recorded)?;
        let listed = self.list_tiles().await?;
        let drawn: Vec<&ListedTile> = listed.iter().filter(|tile| tile.1 > 0).collect();
        let group = |local: bool| {
            let names: Vec<&str> = drawn
                .iter()
                .filter(|tile| (tile.0 == "local") == local)
                .map(|tile| tile.0.as_str())
                .collect();
            summarize(&samples, &names, seconds)
        };
        let window = Window {
            layout,
            paused,
            tiles,
            seconds,
            load_average_1m: load,
            machine_cpu_percent: machine_after.busy_percent_since(&machine_before),
            picture_sizes: drawn
                .iter()
                .map(|tile| (tile.0.clone(), format!("{}x{}", tile.1, tile.2)))
                .collect(),
            remote: group(false),
            local: group(true),
            bytes_per_second: samples.iter().map(|sample| sample.bytes).sum::<u64>() as f64
                / seconds,
            processes: used,
        };
        eprintln!(
            "{layout}{} with {tiles} tiles: {:.1} pictures/s per remote tile, fetch p50 {:.1} ms, draw p50 {:.1} ms, {:.1} MB/s",
            if paused { ", paused," } else { "" },
            window.remote.pictures_per_second_mean,
            window.remote.fetch_ms.p50,
            window.remote.draw_ms.p50,
            window.bytes_per_second / 1e6,
        );
        Ok(window)
    }

    /// Lists the app's processes (the descendants of tauri-driver but
    /// WebKitWebDriver) and Xvfb, as process id and name.
    fn processes(&self) -> Result<Vec<(u32, String)>> {
        let root = self.app.driver_pid().context("tauri-driver has exited")?;
        let mut found: Vec<(u32, String)> = descendants(root)
            .into_iter()
            .filter_map(|pid| Some((pid, process_name(pid)?)))
            .filter(|(_, name)| name != "WebKitWebDriver")
            .collect();
        found.push((self.xvfb_pid, "Xvfb".into()));
        ensure!(
            found.iter().any(|(_, name)| name == "roomler-desktop"),
            "found no roomler-desktop process under tauri-driver: {found:?}"
        );
        Ok(found)
    }
}

fn parse_samples(value: &Value) -> Result<Vec<Sample>> {
    let rows = value
        .as_array()
        .context("the recorder was gone at the end of the window")?;
    rows.iter()
        .map(|row| {
            let field = |index: usize| row.get(index).context("a sample has too few fields");
            Ok(Sample {
                tile: field(0)?
                    .as_str()
                    .context("a sample's tile is not text")?
                    .to_owned(),
                status: field(1)?.as_u64().unwrap_or(0),
                fetch_ms: field(2)?.as_f64().unwrap_or(0.0),
                draw_ms: field(3)?.as_f64().unwrap_or(0.0),
                bytes: field(4)?.as_u64().unwrap_or(0),
            })
        })
        .collect()
}

/// Summarizes the samples of the tiles `names` over `seconds`.
fn summarize(samples: &[Sample], names: &[&str], seconds: f64) -> TileGroup {
    let ours: Vec<&Sample> = samples
        .iter()
        .filter(|sample| names.contains(&sample.tile.as_str()))
        .collect();
    let pictures: Vec<&Sample> = ours
        .iter()
        .copied()
        .filter(|sample| sample.status == 200)
        .collect();
    let per_tile: Vec<f64> = names
        .iter()
        .map(|name| {
            let count = pictures
                .iter()
                .filter(|sample| sample.tile == *name)
                .count();
            count as f64 / seconds
        })
        .collect();
    TileGroup {
        tiles: names.len() as u32,
        pictures: pictures.len() as u64,
        empty_fetches: ours.iter().filter(|sample| sample.status == 204).count() as u64,
        pictures_per_second_mean: if per_tile.is_empty() {
            0.0
        } else {
            per_tile.iter().sum::<f64>() / per_tile.len() as f64
        },
        pictures_per_second_min: per_tile.iter().copied().reduce(f64::min).unwrap_or(0.0),
        fetch_ms: percentiles(pictures.iter().map(|sample| sample.fetch_ms).collect()),
        draw_ms: percentiles(pictures.iter().map(|sample| sample.draw_ms).collect()),
        bytes_per_second: pictures.iter().map(|sample| sample.bytes).sum::<u64>() as f64 / seconds,
    }
}

fn percentiles(mut values: Vec<f64>) -> Percentiles {
    if values.is_empty() {
        return Percentiles::default();
    }
    values.sort_by(f64::total_cmp);
    let at = |share: f64| {
        let rank = (share * values.len() as f64).ceil() as usize;
        values[rank.clamp(1, values.len()) - 1]
    };
    Percentiles {
        mean: values.iter().sum::<f64>() / values.len() as f64,
        p50: at(0.5),
        p95: at(0.95),
    }
}

/// The machine's CPU time from the first line of `/proc/stat`, in ticks.
struct MachineTicks {
    busy: u64,
    total: u64,
}

impl MachineTicks {
    fn busy_percent_since(&self, earlier: &MachineTicks) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 {
            return 0.0;
        }
        let cpus = std::thread::available_parallelism().map_or(1, |count| count.get());
        100.0 * cpus as f64 * self.busy.saturating_sub(earlier.busy) as f64 / total as f64
    }
}

fn machine_cpu_ticks() -> Result<MachineTicks> {
    let stat = std::fs::read_to_string("/proc/stat").context("failed to read /proc/stat")?;
    let line = stat.lines().next().context("/proc/stat is empty")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().context("invalid /proc/stat"))
        .collect::<Result<_>>()?;
    ensure!(ticks.len() >= 5, "invalid /proc/stat: {line:?}");
    // The fields are user, nice, system, idle, iowait, irq, softirq and steal; the
    // guest fields are counted in user already.
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks[3] + ticks[4];
    Ok(MachineTicks {
        busy: total - idle,
        total,
    })
}

/// Sums the CPU of the processes whose name starts with `prefix` (process names
/// are cut to 15 characters, e.g. `WebKitWebProces`).
fn cpu_of(window: &Window, prefix: &str) -> f64 {
    window
        .processes
        .iter()
        .filter(|process| process.name.starts_with(prefix))
        .map(|process| process.cpu_percent)
        .sum()
}

fn rss_mib_of(window: &Window, prefix: &str) -> f64 {
    window
        .processes
        .iter()
        .filter(|process| process.name.starts_with(prefix))
        .map(|process| process.rss_kib as f64 / 1024.0)
        .sum()
}

fn print_tables(report: &Report) {
    println!(
        "| layout | tiles | remote picture | pictures/s per remote tile, mean / min | remote fetch p50 / p95 (ms) | remote draw p50 / p95 (ms) | self view fetch p50 / p95 (ms) | self view draw p50 / p95 (ms) | MB/s to the page |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for window in report.windows.iter().filter(|window| !window.paused) {
        let remote_size = window
            .picture_sizes
            .iter()
            .find(|(tile, _)| *tile != "local")
            .map_or("none", |(_, size)| size.as_str());
        println!(
            "| {} | {} | {remote_size} | {:.1} / {:.1} | {:.1} / {:.1} | {:.2} / {:.2} | {:.1} / {:.1} | {:.2} / {:.2} | {:.1} |",
            window.layout,
            window.tiles,
            window.remote.pictures_per_second_mean,
            window.remote.pictures_per_second_min,
            window.remote.fetch_ms.p50,
            window.remote.fetch_ms.p95,
            window.remote.draw_ms.p50,
            window.remote.draw_ms.p95,
            window.local.fetch_ms.p50,
            window.local.fetch_ms.p95,
            window.local.draw_ms.p50,
            window.local.draw_ms.p95,
            window.bytes_per_second / 1e6,
        );
    }
    println!();
    println!(
        "| layout | tiles | pictures | app CPU | web process CPU | network process CPU | Xvfb CPU | machine CPU | app RSS | web process RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for window in &report.windows {
        println!(
            "| {} | {} | {} | {:.0} % | {:.0} % | {:.0} % | {:.0} % | {:.0} % | {:.0} MiB | {:.0} MiB |",
            window.layout,
            window.tiles,
            if window.paused { "paused" } else { "drawn" },
            cpu_of(window, "roomler-desktop"),
            cpu_of(window, "WebKitWebProces"),
            cpu_of(window, "WebKitNetworkPr"),
            cpu_of(window, "Xvfb"),
            window.machine_cpu_percent,
            rss_mib_of(window, "roomler-desktop"),
            rss_mib_of(window, "WebKitWebProces"),
        );
    }
}
