//! `/crl/<ca-id>.crl` (RFC 5280 CDP, DER) and `/ocsp` (RFC 6960 POST, and GET per Appendix A.1).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request};

use super::{App, HttpResponse, failure_response, response};
use crate::clock::unix_now;
use crate::http::error::HttpFailure;

/// Largest OCSP request accepted.
const MAX_OCSP_REQUEST: usize = 16 * 1024;

/// Serves the current CRL with cache headers that expire at nextUpdate.
pub async fn crl(app: Arc<App>, ca_id: String) -> HttpResponse {
    app.metrics.crl();
    let now = unix_now();
    let rev = app.authority.revocation().clone();
    let result = tokio::task::spawn_blocking(move || rev.crl(&ca_id, now)).await;
    match result {
        Ok(Ok(Some(c))) => {
            let mut r = response(
                200,
                "application/pkix-crl",
                Bytes::from(c.der.as_ref().clone()),
            );
            let max_age = (c.next_update - now).clamp(0, 3600);
            let h = r.headers_mut();
            if let Ok(v) =
                hyper::header::HeaderValue::from_str(&format!("public, max-age={max_age}"))
            {
                h.insert(hyper::header::CACHE_CONTROL, v);
            }
            if let Ok(v) = hyper::header::HeaderValue::from_str(&httpdate(c.next_update)) {
                h.insert(hyper::header::EXPIRES, v);
            }
            if let Ok(v) = hyper::header::HeaderValue::from_str(&format!("\"crl-{}\"", c.number)) {
                h.insert(hyper::header::ETAG, v);
            }
            r
        }
        Ok(Ok(None)) => failure_response(&HttpFailure::NotFound("no such CA".into())),
        Ok(Err(e)) => failure_response(&HttpFailure::from(e)),
        Err(e) => failure_response(&HttpFailure::Internal(e.to_string())),
    }
}

/// Answers OCSP over POST (`application/ocsp-request`) or GET (`/ocsp/<base64 DER>`).
pub async fn ocsp(app: Arc<App>, req: Request<Incoming>, peer: SocketAddr) -> HttpResponse {
    app.metrics.ocsp();
    let der = if req.method() == Method::POST {
        match app.read_body(req.into_body(), MAX_OCSP_REQUEST).await {
            Ok(b) => b.to_vec(),
            Err(f) => return failure_response(&f),
        }
    } else if req.method() == Method::GET {
        let path = req.uri().path();
        let encoded = path.strip_prefix("/ocsp/").unwrap_or("");
        match scepd_pki::scep::http::decode_get_message(encoded) {
            Some(d) if !d.is_empty() && d.len() <= MAX_OCSP_REQUEST => d,
            _ => {
                return failure_response(&HttpFailure::BadRequest(
                    "OCSP GET needs /ocsp/<base64 DER request>".into(),
                ));
            }
        }
    } else {
        return failure_response(&HttpFailure::MethodNotAllowed);
    };
    let rev = app.authority.revocation().clone();
    let now = unix_now();
    // An OCSP response is a signature (330 µs with an RSA-2048 CA): it shares the CPU slots,
    // and one address may not have more than its share signed (tryLater beyond). A reused
    // one (nonce-less request, nothing changed) takes microseconds and is not counted.
    let limits = app.clone();
    let may_sign = move || limits.ocsp_sign_rate.allow(peer.ip());
    match crate::cpu_pool::run(move || Ok(rev.ocsp(&der, now, &may_sign))).await {
        Ok(answer) => {
            if answer.reused {
                app.metrics.ocsp_reused();
            }
            response(200, "application/ocsp-response", answer.der)
        }
        Err(e) => failure_response(&e),
    }
}

/// RFC 9110 IMF-fixdate.
fn httpdate(unix: i64) -> String {
    let t = scepd_pki::encoding::rfc3339(unix); // YYYY-MM-DDTHH:MM:SSZ
    let (y, m, d) = (&t[0..4], &t[5..7], &t[8..10]);
    let days = unix.div_euclid(86_400);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][m.parse::<usize>().unwrap_or(1).clamp(1, 12) - 1];
    format!("{wd}, {d} {mon} {y} {} GMT", &t[11..19])
}
