//! Call benchmark: headless participants join one call in steps, rising towards 50,
//! and one measured participant receives them.
//!
//! Everything runs inside a network namespace of its own (see `roomler_e2e::netns`),
//! because Janus gathers no ICE candidates on a loopback interface. The benchmark
//! starts `roomler-server`, which starts its own Janus, and these `roomler call`
//! processes:
//!
//! - the load bots, which send a loop encoded once (`--pre-encoded`, 320x240 VP8
//!   and Opus) and receive nothing, so that their own encoding and decoding do not
//!   dominate the machine;
//! - one clock participant, whose test pattern carries the wall clock as its frame
//!   counter (`--clock-pattern`), so that the measured participant reads the
//!   glass-to-glass latency from each decoded picture;
//! - the measured participant, which decodes the video of at most
//!   `--receive-video` participants and all audio, and rewrites its statistics
//!   every second.
//!
//! At each step it adds bots until the call has that many and waits
//! `--settle-secs`. Then it measures for `--measure-secs`: the bots' join times,
//! the packet loss and frame rate at the measured participant, its CPU and memory,
//! Janus's CPU, and the latency.
//!
//! Run it as root, after building the binaries:
//!
//! ```text
//! cargo build --workspace --bins
//! target/debug/call_bench --steps 5,10,25,48 --json call-bench.json
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use roomler_e2e::call_bots::{
    CallBots, Participant, enter_namespace, janus_pid, start_call_server,
};
use roomler_e2e::{MachineInfo, process_cpu_secs, process_rss_kib};
use serde::Serialize;
use serde_json::Value;

const ROOM: &str = "bench";
/// Time for the measured participant to receive every participant of a step.
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Parser)]
#[command(about = "Measures calls through Janus with up to 50 participants")]
struct Args {
    /// Load bots in the call at each step, rising; the clock and the measured
    /// participant come on top.
    #[arg(long, value_delimiter = ',', default_values_t = [5u32, 10, 25, 48])]
    steps: Vec<u32>,
    /// Video streams that the measured participant decodes.
    #[arg(long, default_value_t = 25)]
    receive_video: u32,
    /// Seconds between the last join of a step and the measurement.
    #[arg(long, default_value_t = 5)]
    settle_secs: u64,
    /// Seconds that each measurement lasts.
    #[arg(long, default_value_t = 10)]
    measure_secs: u64,
    /// Writes the results as JSON to this file as well.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// The results of one step.
#[derive(Debug, Serialize)]
struct StepResult {
    participants: u32,
    bots: u32,
    /// Join times of the bots that joined in this step, in milliseconds.
    join_ms_median: f64,
    join_ms_max: f64,
    video_tiles_decoded: u32,
    video_fps_mean: f64,
    audio_streams_received: u32,
    video_loss_percent: f64,
    audio_loss_percent: f64,
    /// CPU time per wall time, in percent of one core.
    measured_cpu_percent: f64,
    measured_rss_mib: f64,
    janus_cpu_percent: f64,
    latency_ms_mean: Option<f64>,
    latency_ms_max: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: MachineInfo,
    receive_video: u32,
    measure_secs: u64,
    steps: Vec<StepResult>,
}

/// Returns the path of a binary built next to this one.
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the benchmark");
    exe.with_file_name(name)
}

/// Reads a number field of a remote's statistics.
fn number(remote: &Value, field: &str) -> f64 {
    remote[field].as_f64().unwrap_or(0.0)
}

fn remotes(report: &Value) -> Vec<Value> {
    report["remotes"].as_array().cloned().unwrap_or_default()
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Measures one step: the rates between two reports of the measured participant.
fn compare(
    before: &Value,
    after: &Value,
    seconds: f64,
    clock_feed: Option<u64>,
) -> (u32, f64, u32, f64, f64, Option<f64>, Option<f64>) {
    let earlier: Vec<Value> = remotes(before);
    let find = |feed: &Value| {
        earlier
            .iter()
            .find(|remote| remote["feed_id"] == *feed)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let (mut tiles, mut fps_sum, mut audio) = (0u32, 0.0, 0u32);
    let (mut video_lost, mut video_got, mut audio_lost, mut audio_got) = (0.0, 0.0, 0.0, 0.0);
    let mut latency = (None, None);
    for remote in remotes(after) {
        let previous = find(&remote["feed_id"]);
        let delta = |field: &str| number(&remote, field) - number(&previous, field);
        let frames = delta("video_frames_decoded");
        if frames > 0.0 {
            tiles += 1;
            fps_sum += frames / seconds;
        }
        if delta("audio_packets_received") > 0.0 {
            audio += 1;
        }
        video_lost += delta("video_packets_lost").max(0.0);
        video_got += delta("video_packets_received");
        audio_lost += delta("audio_packets_lost").max(0.0);
        audio_got += delta("audio_packets_received");
        if clock_feed.is_some_and(|feed| remote["feed_id"].as_u64() == Some(feed)) {
            latency = (
                remote["latency_ms_mean"].as_f64(),
                remote["latency_ms_max"].as_f64(),
            );
        }
    }
    let percent = |lost: f64, got: f64| {
        if lost + got > 0.0 {
            100.0 * lost / (lost + got)
        } else {
            0.0
        }
    };
    (
        tiles,
        if tiles > 0 {
            fps_sum / f64::from(tiles)
        } else {
            0.0
        },
        audio,
        percent(video_lost, video_got),
        percent(audio_lost, audio_got),
        latency.0,
        latency.1,
    )
}

async fn run(args: &Args) -> Result<Report> {
    let (server, api) = start_call_server(binary("roomler-server"), ROOM).await?;
    let mut call = CallBots::new(api, &binary("roomler"), ROOM)?;

    let receive = args.receive_video.to_string();
    let clock = call
        .join("clock", &["--clock-pattern", "--receive-video", "0"])
        .await?;
    let measured = call
        .join("measured", &["--receive-video", &receive])
        .await?;
    let mut bots: Vec<Participant> = Vec::new();
    let mut steps = Vec::new();
    for &target in &args.steps {
        let first_new = bots.len();
        while bots.len() < target as usize {
            let bot = call
                .join("bot", &["--pre-encoded", "--receive-video", "0"])
                .await?;
            bots.push(bot);
        }
        // Everyone but the measured participant sends.
        let expected = target as usize + 1;
        let deadline = Instant::now() + JOIN_TIMEOUT;
        loop {
            let received = measured
                .report()
                .map(|report| remotes(&report).len())
                .unwrap_or(0);
            if received >= expected {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "the measured participant receives {received} of {expected} participants after {JOIN_TIMEOUT:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;

        let mut joins: Vec<f64> = bots[first_new..]
            .iter()
            .filter_map(|bot| bot.report().map(|report| number(&report, "join_ms")))
            .collect();
        let join_max = joins.iter().copied().fold(0.0, f64::max);
        let join_median = median(&mut joins);

        let measured_pid = measured.pid();
        let janus = janus_pid(&server).context("no janus process under the server")?;
        let before = measured.report().context("no statistics yet")?;
        let (cpu0, janus0, start) = (
            process_cpu_secs(measured_pid)?,
            process_cpu_secs(janus)?,
            Instant::now(),
        );
        tokio::time::sleep(Duration::from_secs(args.measure_secs)).await;
        // The statistics are rewritten every second; wait for one newer than the sleep.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let after = measured.report().context("no statistics")?;
        let seconds = start.elapsed().as_secs_f64();
        let cpu = process_cpu_secs(measured_pid)? - cpu0;
        let janus_cpu = process_cpu_secs(janus)? - janus0;
        let clock_feed = clock.report().and_then(|report| report["feed_id"].as_u64());
        let (tiles, fps, audio, video_loss, audio_loss, latency_mean, latency_max) =
            compare(&before, &after, seconds, clock_feed);
        let step = StepResult {
            participants: target + 2,
            bots: target,
            join_ms_median: join_median,
            join_ms_max: join_max,
            video_tiles_decoded: tiles,
            video_fps_mean: fps,
            audio_streams_received: audio,
            video_loss_percent: video_loss,
            audio_loss_percent: audio_loss,
            measured_cpu_percent: 100.0 * cpu / seconds,
            measured_rss_mib: process_rss_kib(measured_pid)? as f64 / 1024.0,
            janus_cpu_percent: 100.0 * janus_cpu / seconds,
            latency_ms_mean: latency_mean,
            latency_ms_max: latency_max,
        };
        eprintln!("{step:?}");
        if std::env::var_os("CALL_BENCH_DUMP").is_some() {
            eprintln!("{}", serde_json::to_string_pretty(&after)?);
        }
        steps.push(step);
    }
    drop(bots);
    drop(measured);
    drop(clock);
    server.terminate().await?;
    Ok(Report {
        machine: MachineInfo::read(),
        receive_video: args.receive_video,
        measure_secs: args.measure_secs,
        steps,
    })
}

fn print_table(report: &Report) {
    println!(
        "| participants | join median / max (ms) | tiles decoded | fps | audio streams | video loss | audio loss | measured CPU | measured RSS | Janus CPU | latency mean / max (ms) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for step in &report.steps {
        let latency = match (step.latency_ms_mean, step.latency_ms_max) {
            (Some(mean), Some(max)) => format!("{mean:.0} / {max:.0}"),
            _ => "n/a".into(),
        };
        println!(
            "| {} | {:.0} / {:.0} | {} | {:.1} | {} | {:.2} % | {:.2} % | {:.0} % | {:.0} MiB | {:.0} % | {latency} |",
            step.participants,
            step.join_ms_median,
            step.join_ms_max,
            step.video_tiles_decoded,
            step.video_fps_mean,
            step.audio_streams_received,
            step.video_loss_percent,
            step.audio_loss_percent,
            step.measured_cpu_percent,
            step.measured_rss_mib,
            step.janus_cpu_percent,
        );
    }
}

fn write_json(path: &Path, report: &Report) -> Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(report)?)
        .with_context(|| format!("failed to write {}", path.display()))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(outer_run) = enter_namespace("call_bench") {
        return outer_run;
    }
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    match runtime.block_on(run(&args)) {
        Ok(report) => {
            print_table(&report);
            if let Some(path) = &args.json
                && let Err(error) = write_json(path, &report)
            {
                eprintln!("call_bench: {error:#}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("call_bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}
