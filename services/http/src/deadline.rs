//! When an HTTP client stops waiting for an answer. gRPC clients say so in `grpc-timeout`; an
//! HTTP client may send `x-rag-timeout: <seconds>` ("30", "2.5"). Without one there is no
//! deadline, as for a gRPC call without `grpc-timeout`: the answer runs until it is done or
//! the client leaves. Past the deadline the answer ends with DEADLINE_EXCEEDED and gives its
//! place in the generator back.

use std::time::{Duration, Instant};

use axum::http::HeaderMap;

use crate::HttpError;

/// The header naming the timeout, in seconds from when the request arrived.
pub const TIMEOUT_HEADER: &str = "x-rag-timeout";

/// The longest timeout taken: a day (far past any answer; bounded, so the instant is valid).
const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// The deadline the request's `x-rag-timeout` sets from `arrived`; `None` without one. A
/// value that is not a number of seconds in (0, 86400] is refused naming the header.
pub fn deadline(headers: &HeaderMap, arrived: Instant) -> Result<Option<Instant>, HttpError> {
    let Some(value) = headers.get(TIMEOUT_HEADER) else {
        return Ok(None);
    };
    let seconds = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| *s > 0.0 && *s <= MAX_TIMEOUT_SECS)
        .ok_or_else(|| {
            HttpError::invalid(
                TIMEOUT_HEADER,
                format!("must be seconds, more than 0 and at most {MAX_TIMEOUT_SECS}"),
            )
        })?;
    Ok(Some(arrived + Duration::from_secs_f64(seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(TIMEOUT_HEADER, value.parse().unwrap());
        headers
    }

    #[test]
    fn a_timeout_in_seconds_sets_the_deadline_and_nothing_else_does() {
        let now = Instant::now();
        assert_eq!(deadline(&HeaderMap::new(), now).unwrap(), None);
        assert_eq!(
            deadline(&with("2.5"), now).unwrap(),
            Some(now + Duration::from_millis(2500))
        );
        assert_eq!(
            deadline(&with(" 30 "), now).unwrap(),
            Some(now + Duration::from_secs(30))
        );
        for bad in ["", "0", "-1", "abc", "1s", "NaN", "inf", "86401"] {
            let e = deadline(&with(bad), now).unwrap_err();
            assert_eq!(
                e.body().error.param.as_deref(),
                Some(TIMEOUT_HEADER),
                "{bad:?}"
            );
        }
    }
}
