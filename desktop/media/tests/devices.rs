//! Device lists and the "no device" states. This runs on machines with and
//! without cameras and sound cards; cases that need no device skip, with a
//! message, where one exists.

use roomler_media::{
    CameraSource, CpalMicrophone, CpalSpeaker, DeviceKind, SourceError, VideoFormat, list_cameras,
    list_microphones, list_speakers,
};

const REQUESTED: VideoFormat = VideoFormat {
    width: 640,
    height: 360,
    fps: 30,
};

fn assert_no_device(result: Result<impl Sized, SourceError>, kind: DeviceKind, name: Option<&str>) {
    match result {
        Err(SourceError::NoDevice {
            kind: got_kind,
            requested,
        }) => {
            assert_eq!(got_kind, kind);
            assert_eq!(requested.as_deref(), name);
        }
        Err(other) => panic!("expected no {kind}, got {other}"),
        Ok(_) => panic!("a {kind} named {name:?} opened"),
    }
}

#[test]
fn unknown_camera_is_no_device() {
    let result = CameraSource::open(Some("no such camera"), REQUESTED);
    assert_no_device(result, DeviceKind::Camera, Some("no such camera"));
}

#[test]
fn no_camera_is_no_device() {
    let cameras = list_cameras().expect("listing cameras never fails for a missing camera");
    if !cameras.is_empty() {
        eprintln!("skipped: this machine has cameras: {cameras:?}");
        return;
    }
    assert_no_device(
        CameraSource::open(None, REQUESTED),
        DeviceKind::Camera,
        None,
    );
}

#[test]
fn unknown_microphone_is_no_device() {
    let result = CpalMicrophone::open(Some("no such microphone"));
    assert_no_device(result, DeviceKind::Microphone, Some("no such microphone"));
}

#[test]
fn unknown_speaker_is_no_device() {
    let result = CpalSpeaker::open(Some("no such speaker"));
    assert_no_device(result, DeviceKind::Speaker, Some("no such speaker"));
}

#[test]
fn no_device_message_says_what_to_do() {
    let err = CpalMicrophone::open(Some("USB headset")).err().unwrap();
    let message = err.to_string();
    assert!(message.contains("\"USB headset\""), "{message}");
    assert!(message.contains("device list"), "{message}");
}

#[test]
fn audio_device_lists_do_not_fail() {
    // ALSA lists its plugins ("null", "default") even without a sound card, so
    // the lists may be non-empty; listing itself must not fail.
    let microphones = list_microphones().expect("microphones list");
    let speakers = list_speakers().expect("speakers list");
    for device in microphones.iter() {
        assert_eq!(device.kind, DeviceKind::Microphone);
    }
    for device in speakers.iter() {
        assert_eq!(device.kind, DeviceKind::Speaker);
    }
}

#[test]
fn no_microphone_is_no_device() {
    let microphones = list_microphones().expect("microphones list");
    if !microphones.is_empty() {
        eprintln!("skipped: this machine has microphones: {microphones:?}");
        return;
    }
    assert_no_device(CpalMicrophone::open(None), DeviceKind::Microphone, None);
}

#[test]
fn no_speaker_is_no_device() {
    let speakers = list_speakers().expect("speakers list");
    if !speakers.is_empty() {
        eprintln!("skipped: this machine has speakers: {speakers:?}");
        return;
    }
    assert_no_device(CpalSpeaker::open(None), DeviceKind::Speaker, None);
}
