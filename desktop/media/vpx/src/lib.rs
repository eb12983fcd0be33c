//! A safe VP8 encoder and decoder over libvpx's C API, through the raw
//! bindings of `env-libvpx-sys` (pre-generated for Debian's libvpx 1.12, so no
//! bindgen run is needed).
//!
//! This crate contains all of roomler's unsafe code for video. The higher-level
//! wrappers on crates.io (`vpx-rs` 0.2) do not build against libvpx 1.12, and
//! `vpx-encode` has no decoder. Everything here works on tightly packed I420
//! buffers: the Y plane, then U and V at half width and height.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::raw::{c_int, c_long, c_uint, c_ulong};
use std::ptr;

use vpx_sys as sys;

/// A libvpx call that failed, with libvpx's own description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpxError {
    /// The C function that failed.
    pub operation: &'static str,
    pub message: String,
}

impl std::fmt::Display for VpxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed: {}", self.operation, self.message)
    }
}

impl std::error::Error for VpxError {}

fn invalid(operation: &'static str, message: String) -> VpxError {
    VpxError { operation, message }
}

/// Turns a libvpx status into a result, reading the context's error detail.
fn check(
    ctx: *mut sys::vpx_codec_ctx_t,
    operation: &'static str,
    status: sys::vpx_codec_err_t,
) -> Result<(), VpxError> {
    if status == sys::vpx_codec_err_t::VPX_CODEC_OK {
        return Ok(());
    }
    // SAFETY: vpx_codec_err_to_string returns a static NUL-terminated string for
    // any status, and vpx_codec_error_detail returns NULL or a string owned by
    // the context, which `ctx` keeps alive for the duration of this call.
    let message = unsafe {
        let mut message = CStr::from_ptr(sys::vpx_codec_err_to_string(status))
            .to_string_lossy()
            .into_owned();
        if !ctx.is_null() {
            let detail = sys::vpx_codec_error_detail(ctx);
            if !detail.is_null() {
                message.push_str(": ");
                message.push_str(&CStr::from_ptr(detail).to_string_lossy());
            }
        }
        message
    };
    Err(VpxError { operation, message })
}

/// Returns the length of a packed I420 buffer of `width` x `height`.
pub fn i420_len(width: u32, height: u32) -> usize {
    (width * height) as usize + 2 * ((width / 2) * (height / 2)) as usize
}

/// Encoder settings, applied at creation; the bitrate can change later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderSettings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Target bitrate in kbit/s, kept by constant-bitrate rate control.
    pub bitrate_kbps: u32,
    /// Frames between automatic keyframes, or `None` for keyframes only on request.
    pub keyframe_interval: Option<u32>,
    /// libvpx's speed/quality trade-off (VP8E_SET_CPUUSED), -16..=16; negative
    /// values adapt to the real-time deadline.
    pub cpu_used: i32,
    pub threads: u32,
}

/// One encoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    pub data: Vec<u8>,
    pub keyframe: bool,
    /// The presentation timestamp given to [`Encoder::encode`].
    pub pts: i64,
}

/// A libvpx VP8 encoder context.
pub struct Encoder {
    // Boxed so the context and configuration keep their addresses, which libvpx
    // may hold on to between calls.
    ctx: Box<sys::vpx_codec_ctx_t>,
    config: Box<sys::vpx_codec_enc_cfg_t>,
    width: u32,
    height: u32,
}

// SAFETY: a libvpx codec context has no thread affinity. It must not be used from
// two threads at once, and `&mut self` on every call rules that out.
unsafe impl Send for Encoder {}

impl Encoder {
    pub fn new(settings: &EncoderSettings) -> Result<Self, VpxError> {
        let EncoderSettings { width, height, .. } = *settings;
        if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
            return Err(invalid(
                "vpx_codec_enc_init",
                format!("{width}x{height} is not an even, non-zero size"),
            ));
        }
        if settings.fps == 0 {
            return Err(invalid("vpx_codec_enc_init", "frame rate 0".into()));
        }

        // SAFETY: vpx_codec_vp8_cx returns a pointer to a static interface.
        let iface = unsafe { sys::vpx_codec_vp8_cx() };
        let mut uninit = Box::<sys::vpx_codec_enc_cfg_t>::new_uninit();
        // SAFETY: the pointer is valid for writes of one configuration, which
        // libvpx fills in completely when it returns OK.
        let status = unsafe { sys::vpx_codec_enc_config_default(iface, uninit.as_mut_ptr(), 0) };
        check(ptr::null_mut(), "vpx_codec_enc_config_default", status)?;
        // SAFETY: the call above succeeded, so every field is initialised.
        let mut config = unsafe { uninit.assume_init() };

        config.g_w = width;
        config.g_h = height;
        // Timestamps in the 90 kHz RTP video clock.
        config.g_timebase = sys::vpx_rational {
            num: 1,
            den: 90_000,
        };
        config.g_threads = settings.threads.max(1);
        config.g_lag_in_frames = 0;
        config.g_error_resilient = 1; // VPX_ERROR_RESILIENT_DEFAULT
        config.g_pass = sys::vpx_enc_pass::VPX_RC_ONE_PASS;
        config.rc_end_usage = sys::vpx_rc_mode::VPX_CBR;
        config.rc_target_bitrate = settings.bitrate_kbps.max(1);
        // Never skip frames to meet the bitrate, so every input frame gives an
        // output frame.
        config.rc_dropframe_thresh = 0;
        config.rc_resize_allowed = 0;
        // Quantizer range and rate-control buffers as libwebrtc sets them for VP8
        // in real time.
        config.rc_min_quantizer = 2;
        config.rc_max_quantizer = 56;
        config.rc_undershoot_pct = 100;
        config.rc_overshoot_pct = 15;
        config.rc_buf_sz = 1_000;
        config.rc_buf_initial_sz = 500;
        config.rc_buf_optimal_sz = 600;
        match settings.keyframe_interval {
            Some(interval) => {
                config.kf_mode = sys::vpx_kf_mode::VPX_KF_AUTO;
                config.kf_min_dist = 0;
                config.kf_max_dist = interval.max(1);
            }
            None => config.kf_mode = sys::vpx_kf_mode::VPX_KF_DISABLED,
        }

        // SAFETY: zeroed is the documented initial state of a context before init.
        let mut ctx: Box<sys::vpx_codec_ctx_t> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: `ctx` and `config` are valid for the call; the ABI version is the
        // one the bindings were generated for.
        let status = unsafe {
            sys::vpx_codec_enc_init_ver(
                ctx.as_mut(),
                iface,
                config.as_ref(),
                0,
                sys::VPX_ENCODER_ABI_VERSION as c_int,
            )
        };
        check(ctx.as_mut(), "vpx_codec_enc_init", status)?;
        let mut encoder = Self {
            ctx,
            config,
            width,
            height,
        };

        let cpu_used = settings.cpu_used.clamp(-16, 16) as c_int;
        // SAFETY: the context was initialised above; VP8E_SET_CPUUSED takes an int.
        let status = unsafe {
            sys::vpx_codec_control_(
                encoder.ctx.as_mut(),
                sys::vp8e_enc_control_id::VP8E_SET_CPUUSED as c_int,
                cpu_used,
            )
        };
        check(
            encoder.ctx.as_mut(),
            "vpx_codec_control(VP8E_SET_CPUUSED)",
            status,
        )?;
        Ok(encoder)
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// Encodes one packed I420 frame of the encoder's size. `pts` and `duration`
    /// are in 90 kHz units. Returns the frames libvpx emitted, normally one.
    pub fn encode(
        &mut self,
        i420: &[u8],
        pts: i64,
        duration: u64,
        force_keyframe: bool,
    ) -> Result<Vec<EncodedFrame>, VpxError> {
        let expected = i420_len(self.width, self.height);
        if i420.len() != expected {
            return Err(invalid(
                "vpx_codec_encode",
                format!(
                    "frame of {} bytes, expected {expected} for {}x{} I420",
                    i420.len(),
                    self.width,
                    self.height
                ),
            ));
        }

        // SAFETY: all-zero is a valid image descriptor (format NONE, null planes),
        // which vpx_img_wrap then fills in.
        let mut image: sys::vpx_image_t = unsafe { std::mem::zeroed() };
        // SAFETY: vpx_img_wrap only records pointers into `i420`, which outlives
        // the encode call below. The length was checked against the I420 layout
        // for this size and an alignment of 1. The encoder never writes to its
        // input image, so the cast to a mutable pointer is not used for writes.
        let wrapped = unsafe {
            sys::vpx_img_wrap(
                &mut image,
                sys::vpx_img_fmt::VPX_IMG_FMT_I420,
                self.width as c_uint,
                self.height as c_uint,
                1,
                i420.as_ptr() as *mut u8,
            )
        };
        if wrapped.is_null() {
            return Err(invalid("vpx_img_wrap", "libvpx rejected the image".into()));
        }

        let flags = if force_keyframe {
            sys::VPX_EFLAG_FORCE_KF as sys::vpx_enc_frame_flags_t
        } else {
            0
        };
        // SAFETY: the context is initialised and `image` wraps a live buffer.
        let status = unsafe {
            sys::vpx_codec_encode(
                self.ctx.as_mut(),
                &image,
                pts,
                duration as c_ulong,
                flags,
                sys::VPX_DL_REALTIME as c_ulong,
            )
        };
        check(self.ctx.as_mut(), "vpx_codec_encode", status)?;
        Ok(self.drain_packets())
    }

    /// Copies out the packets that the last encode produced.
    fn drain_packets(&mut self) -> Vec<EncodedFrame> {
        let mut frames = Vec::new();
        let mut iter: sys::vpx_codec_iter_t = ptr::null();
        loop {
            // SAFETY: the iterator starts at NULL and is only advanced by libvpx;
            // the returned packet stays valid until the next call on the context.
            let packet = unsafe { sys::vpx_codec_get_cx_data(self.ctx.as_mut(), &mut iter) };
            if packet.is_null() {
                break;
            }
            // SAFETY: `packet` is non-NULL and points to a packet owned by the
            // context. `data.frame` is the active union field for frame packets,
            // and its `buf` contains `sz` bytes.
            unsafe {
                if (*packet).kind != sys::vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                    continue;
                }
                let frame = (*packet).data.frame;
                if frame.buf.is_null() {
                    continue;
                }
                let data = std::slice::from_raw_parts(frame.buf as *const u8, frame.sz as usize);
                frames.push(EncodedFrame {
                    data: data.to_vec(),
                    keyframe: frame.flags & sys::VPX_FRAME_IS_KEY != 0,
                    pts: frame.pts,
                });
            }
        }
        frames
    }

    /// Changes the target bitrate, in kbit/s, from the next frame on.
    pub fn set_bitrate(&mut self, kbps: u32) -> Result<(), VpxError> {
        self.config.rc_target_bitrate = kbps.max(1);
        // SAFETY: the context is initialised and `config` is a valid
        // configuration for it, changed only in its bitrate.
        let status =
            unsafe { sys::vpx_codec_enc_config_set(self.ctx.as_mut(), self.config.as_ref()) };
        check(self.ctx.as_mut(), "vpx_codec_enc_config_set", status)
    }

    pub fn bitrate_kbps(&self) -> u32 {
        self.config.rc_target_bitrate
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: the context was initialised in `new` and is destroyed only here.
        unsafe {
            sys::vpx_codec_destroy(self.ctx.as_mut());
        }
    }
}

/// A decoded picture, packed I420 of the display size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedFrame {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// A libvpx VP8 decoder context.
pub struct Decoder {
    ctx: Box<sys::vpx_codec_ctx_t>,
}

// SAFETY: as for `Encoder`, the context has no thread affinity and `&mut self`
// prevents concurrent use.
unsafe impl Send for Decoder {}

impl Decoder {
    pub fn new() -> Result<Self, VpxError> {
        // The size is learnt from the stream; one thread per decoder, because the
        // call engine decodes several streams in parallel.
        let config = sys::vpx_codec_dec_cfg {
            threads: 1,
            w: 0,
            h: 0,
        };
        // SAFETY: all-zero is the initial state of a context before init.
        let mut ctx: Box<sys::vpx_codec_ctx_t> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: the interface pointer is static and `ctx` and `config` are valid
        // for the call.
        let status = unsafe {
            sys::vpx_codec_dec_init_ver(
                ctx.as_mut(),
                sys::vpx_codec_vp8_dx(),
                &config,
                0,
                sys::VPX_DECODER_ABI_VERSION as c_int,
            )
        };
        check(ctx.as_mut(), "vpx_codec_dec_init", status)?;
        Ok(Self { ctx })
    }

    /// Decodes one whole VP8 frame. Returns `None` when the frame produced no
    /// picture to show.
    pub fn decode(&mut self, data: &[u8]) -> Result<Option<DecodedFrame>, VpxError> {
        if data.is_empty() {
            return Err(invalid("vpx_codec_decode", "empty frame".into()));
        }
        let length = c_uint::try_from(data.len())
            .map_err(|_| invalid("vpx_codec_decode", format!("frame of {} bytes", data.len())))?;
        // SAFETY: the context is initialised and `data` is valid for `length` bytes
        // during the call, which copies what it keeps.
        let status = unsafe {
            sys::vpx_codec_decode(
                self.ctx.as_mut(),
                data.as_ptr(),
                length,
                ptr::null_mut(),
                0 as c_long,
            )
        };
        check(self.ctx.as_mut(), "vpx_codec_decode", status)?;

        let mut iter: sys::vpx_codec_iter_t = ptr::null();
        // SAFETY: the iterator starts at NULL; the returned image belongs to the
        // decoder and stays valid until the next decode.
        let image = unsafe { sys::vpx_codec_get_frame(self.ctx.as_mut(), &mut iter) };
        if image.is_null() {
            return Ok(None);
        }
        // SAFETY: `image` is non-NULL and valid until the next call on the context.
        let image = unsafe { &*image };
        copy_image(image).map(Some)
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: the context was initialised in `new` and is destroyed only here.
        unsafe {
            sys::vpx_codec_destroy(self.ctx.as_mut());
        }
    }
}

/// Copies a decoded I420 image, whose rows are padded to its strides, into a
/// packed buffer of even display size.
fn copy_image(image: &sys::vpx_image_t) -> Result<DecodedFrame, VpxError> {
    if image.fmt != sys::vpx_img_fmt::VPX_IMG_FMT_I420 {
        return Err(invalid(
            "vpx_codec_get_frame",
            format!("image format {:?}, expected I420", image.fmt),
        ));
    }
    let width = image.d_w & !1;
    let height = image.d_h & !1;
    let mut data = Vec::with_capacity(i420_len(width, height));
    let planes = [
        (0, width, height),
        (1, width / 2, height / 2),
        (2, width / 2, height / 2),
    ];
    for (plane, plane_width, plane_height) in planes {
        let base = image.planes[plane];
        let stride = image.stride[plane] as isize;
        if base.is_null() || stride < plane_width as isize {
            return Err(invalid(
                "vpx_codec_get_frame",
                format!("plane {plane} has stride {stride} for width {plane_width}"),
            ));
        }
        for row in 0..plane_height as isize {
            // SAFETY: libvpx allocates each plane with at least `stride` bytes per
            // row for the display height (rounded up to the chroma subsampling),
            // and `plane_width <= stride` was checked.
            let line = unsafe {
                std::slice::from_raw_parts(base.offset(row * stride), plane_width as usize)
            };
            data.extend_from_slice(line);
        }
    }
    Ok(DecodedFrame {
        width,
        height,
        data,
    })
}
