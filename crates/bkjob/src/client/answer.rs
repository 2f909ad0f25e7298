//! Reading an answer: its body with a size cap, chunk by chunk (chunked answers included), and
//! its envelope into the data wanted, every server text through the [`Scrubber`].

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::error::{ApiError, TransportKind};
use super::scrub::{MAX_EXCERPT_CHARS, MAX_MESSAGE_CHARS, MAX_NAME_CHARS, Scrubber};
use crate::envelope::GatewayErrorBody;
use crate::lenient::null_default;

/// The largest answer read. JOB's largest is a v3 status with every host's result for the
/// 100,000 target hosts its default file-task limit allows (about 15 MB); a v2 log of as
/// many hosts with short logs is of the same order. Past this the answer is refused unread.
pub const MAX_ANSWER_BYTES: usize = 32 << 20;

/// How much of an error answer (a status other than 2xx) is read: any gateway or ESB error
/// body fits many times over, and the status alone already decides what happens.
pub(crate) const MAX_ERROR_BYTES: usize = 64 << 10;

/// The largest `permission` object (IAM details of a `9900403`) that is kept.
const MAX_PERMISSION_BYTES: usize = 64 << 10;

/// A body read up to a cap.
pub(crate) enum Body {
    /// All of it.
    Whole(Vec<u8>),
    /// More than the cap (the rest is left unread), with the size `Content-Length` announced.
    TooLarge { announced: Option<u64> },
}

/// Reads the body chunk by chunk and stops past `cap` bytes (also when `Content-Length`
/// announces more). Bounded in time by the client's request timeout, which covers the body,
/// and cancellable between chunks.
pub(crate) async fn read_capped(
    response: &mut reqwest::Response,
    cap: usize,
) -> Result<Body, reqwest::Error> {
    let announced = response.content_length();
    if announced.is_some_and(|n| n > cap as u64) {
        return Ok(Body::TooLarge { announced });
    }
    let mut bytes = Vec::with_capacity(announced.map_or(8 << 10, |n| n as usize));
    while let Some(chunk) = response.chunk().await? {
        if bytes.len() + chunk.len() > cap {
            return Ok(Body::TooLarge { announced });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Body::Whole(bytes))
}

/// The refusal of an answer over [`MAX_ANSWER_BYTES`]: a decode error, so a submission's
/// outcome is unknown (JOB may have created the job) and nothing is guessed.
pub(crate) fn too_large(api: &str, announced: Option<u64>) -> ApiError {
    let size = announced.map_or_else(
        || "more than that".to_owned(),
        |n| format!("{n} bytes announced"),
    );
    ApiError::Decode {
        api: api.to_owned(),
        message: format!(
            "the answer is larger than the {} MiB plan reads ({size}); it was not read",
            MAX_ANSWER_BYTES >> 20
        ),
    }
}

/// A non-2xx answer: the gateway's error body (`code`, `code_name`, `message`) when it has
/// one, an excerpt of whatever else it is otherwise.
pub(crate) fn http_error(
    scrubber: &Scrubber,
    api: &str,
    status: u16,
    retry_after: Option<std::time::Duration>,
    bytes: &[u8],
) -> ApiError {
    let parsed: Option<GatewayErrorBody> = serde_json::from_slice(bytes).ok();
    let (code, code_name, message) = match parsed {
        Some(b) if b.code != 0 || !b.code_name.is_empty() => (
            (b.code != 0).then_some(b.code),
            (!b.code_name.is_empty()).then(|| scrubber.excerpt(&b.code_name, MAX_NAME_CHARS)),
            scrubber.excerpt(&b.message, MAX_MESSAGE_CHARS),
        ),
        _ => (None, None, excerpt(scrubber, bytes)),
    };
    ApiError::Http {
        api: api.to_owned(),
        status,
        code,
        code_name,
        message,
        retry_after,
    }
}

/// The envelope as read from the wire: `data` and `permission` left raw, so a huge or
/// malformed one costs nothing until it is known to be wanted.
#[derive(serde::Deserialize)]
struct WireEnvelope<'a> {
    #[serde(default, deserialize_with = "null_default")]
    result: bool,
    #[serde(default, deserialize_with = "null_default")]
    code: i64,
    #[serde(default)]
    message: Option<String>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
    #[serde(default, borrow)]
    permission: Option<&'a RawValue>,
}

/// A 2xx answer: JOB's error as [`ApiError::Api`], or the `data` as `T`, with every string in
/// it scrubbed. `data` is decoded straight into `T` (junk of the wrong shape is refused at its
/// first value, costing no memory); only when its raw text may hold a secret is `T` taken
/// through JSON once more to scrub its strings.
pub(crate) fn decode<T: DeserializeOwned + Serialize>(
    scrubber: &Scrubber,
    api: &str,
    url: &str,
    bytes: &[u8],
) -> Result<T, ApiError> {
    let envelope: WireEnvelope<'_> = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_eof() && bytes.first() == Some(&b'{') {
            // JSON that stops in the middle: the answer was cut short on the way, as with a
            // broken connection (a read is repeated, a submission's outcome is unknown), not
            // an answer in a shape we do not understand.
            ApiError::Transport {
                api: api.to_owned(),
                url: url.to_owned(),
                kind: TransportKind::Other,
                message: format!("the answer was cut short after {} bytes ({e})", bytes.len()),
            }
        } else {
            ApiError::Decode {
                api: api.to_owned(),
                message: format!(
                    "{}: {}",
                    scrubber.excerpt(&e.to_string(), MAX_MESSAGE_CHARS),
                    excerpt(scrubber, bytes)
                ),
            }
        }
    })?;
    if !envelope.result || envelope.code != 0 {
        return Err(ApiError::Api {
            api: api.to_owned(),
            // ESB defaults a missing code to 1306000 when result is false.
            code: if envelope.code == 0 {
                1_306_000
            } else {
                envelope.code
            },
            message: scrubber.excerpt(&envelope.message.unwrap_or_default(), MAX_MESSAGE_CHARS),
            permission: permission(scrubber, envelope.permission),
        });
    }
    let data = envelope.data.map_or("null", RawValue::get);
    let decode_error = |e: serde_json::Error| ApiError::Decode {
        api: api.to_owned(),
        message: format!(
            "`data`: {}",
            scrubber.excerpt(&e.to_string(), MAX_MESSAGE_CHARS)
        ),
    };
    let value: T = serde_json::from_str(data).map_err(decode_error)?;
    if !scrubber.may_hide_secret_in_json(data.as_bytes()) {
        return Ok(value);
    }
    let mut tree = serde_json::to_value(&value).map_err(decode_error)?;
    scrubber.scrub_json(&mut tree);
    serde_json::from_value(tree).map_err(decode_error)
}

/// The IAM details of a permission denial, scrubbed; dropped when implausibly large.
fn permission(scrubber: &Scrubber, raw: Option<&RawValue>) -> Option<Box<serde_json::Value>> {
    let raw = raw.filter(|r| r.get().len() <= MAX_PERMISSION_BYTES)?;
    let mut value: serde_json::Value = serde_json::from_str(raw.get()).ok()?;
    if value.is_null() {
        return None;
    }
    scrubber.scrub_json(&mut value);
    Some(Box::new(value))
}

/// The start of a body that is not what was expected, scrubbed before it is cut.
fn excerpt(scrubber: &Scrubber, bytes: &[u8]) -> String {
    // A secret reaches at most a few hundred bytes past the excerpt; the rest is not looked at.
    let head = &bytes[..bytes.len().min(64 << 10)];
    let mut text = scrubber.excerpt(&String::from_utf8_lossy(head), MAX_EXCERPT_CHARS);
    if head.len() < bytes.len() && !text.ends_with("...") {
        text.push_str("...");
    }
    text
}
