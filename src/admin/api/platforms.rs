//! `/admin/v1/platforms`: list and create; one platform: show, profile export, delete,
//! static secret rotation.

use hyper::Method;
use serde_json::{Value, json};

use super::{Call, param, str_field};
use crate::admin::json_response;
use crate::devices::identity::DevicePattern;
use crate::http::HttpResponse;
use crate::http::error::HttpFailure;
use crate::platforms;
use crate::store::Store;
use scepd_pki::encoding::rfc3339;

/// A request under `/admin/v1/platforms`; `rest` is the path after it.
pub(super) fn handle(
    c: &Call<'_>,
    method: &Method,
    rest: &[&str],
) -> Result<HttpResponse, HttpFailure> {
    let Call {
        app,
        store,
        data_dir,
        query,
        body,
        now,
        actor,
        ..
    } = *c;
    match (method, rest) {
        (&Method::GET, []) => {
            let list: Vec<Value> = store.list_platforms()?.iter().map(platform_json).collect();
            Ok(json_response(200, &json!(list)))
        }
        (&Method::POST, []) => {
            let name = str_field(body, "name")
                .ok_or_else(|| HttpFailure::BadRequest("name is required".into()))?;
            let pattern = str_field(body, "device_id_pattern");
            if let Some(p) = pattern {
                DevicePattern::new(p).map_err(|e| HttpFailure::BadRequest(e.to_string()))?;
            }
            let allow_des = body
                .get("allow_des")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let created = create_platform(store, data_dir, name, allow_des, body, now)?;
            let id = created["platform_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if let Some(p) = pattern {
                store.set_device_id_pattern(&id, Some(p))?;
            }
            store.append_audit(now, actor, "platform.created", &id, &json!({"name": name, "challenge": str_field(body, "challenge").unwrap_or("static")}).to_string())?;
            Ok(json_response(201, &created))
        }
        (&Method::GET, [id_or_name]) => {
            let p = platforms::resolve(store, id_or_name)?;
            let mut v = platform_json(&p);
            v["device_id_pattern"] = json!(store.device_id_pattern(&p.id)?);
            Ok(json_response(200, &v))
        }
        (&Method::GET, [id_or_name, file]) if file.starts_with("profile") => {
            let p = platforms::resolve(store, id_or_name)?;
            let id = p.id.as_str();
            let format = match param(query, "format") {
                None => crate::profiles::Format::Apple,
                Some(f) => crate::profiles::Format::parse(f).ok_or_else(|| {
                    HttpFailure::BadRequest(
                        "format must be apple, windows, intune or workspace-one".into(),
                    )
                })?,
            };
            let challenge = param(query, "challenge").map(|c| {
                String::from_utf8_lossy(&scepd_pki::encoding::percent_decode(c)).into_owned()
            });
            let subject = param(query, "subject").map(|c| {
                String::from_utf8_lossy(&scepd_pki::encoding::percent_decode(c)).replace('+', " ")
            });
            let base = app.authority.public_base();
            let root_der = app.authority.root_certificate();
            let input = crate::profiles::ProfileInput {
                platform: &p,
                scep_url: format!("{base}{}", platforms::scep_path(id)),
                challenge_url: (p.challenge.kind() == "dynamic")
                    .then(|| format!("{base}{}", platforms::challenge_url_path(id))),
                challenge: challenge.as_deref(),
                root_der: &root_der,
                subject: subject.as_deref(),
            };
            let (ct, body) = crate::profiles::render(&input, format);
            Ok(crate::http::response(200, ct, body))
        }
        (&Method::DELETE, [id_or_name]) => {
            let id = platforms::resolve(store, id_or_name)?.id;
            let id = id.as_str();
            store.delete_platform(id)?;
            store.append_audit(now, actor, "platform.deleted", id, "{}")?;
            Ok(json_response(
                200,
                &json!({"platform_id": id, "deleted": true}),
            ))
        }
        (&Method::POST, [id_or_name, "rotate-secret"]) => {
            let id = platforms::resolve(store, id_or_name)?.id;
            let id = id.as_str();
            let challenge = platforms::rotate_static_secret(store, id).map_err(|e| match e {
                platforms::PlatformError::Store(s) => HttpFailure::from(s),
                other => HttpFailure::BadRequest(other.to_string()),
            })?;
            store.append_audit(now, actor, "platform.secret_rotated", id, "{}")?;
            Ok(json_response(
                200,
                &json!({"platform_id": id, "scep_path": platforms::scep_path(id), "challenge": challenge.as_str()}),
            ))
        }
        _ => Err(HttpFailure::NotFound("no such endpoint".into())),
    }
}

fn platform_json(p: &crate::store::Platform) -> Value {
    json!({"platform_id": p.id, "name": p.name, "challenge": p.challenge.kind(), "scep_path": platforms::scep_path(&p.id), "allow_des": p.allow_des, "created_at": rfc3339(p.created_at)})
}

fn platform_error(e: platforms::PlatformError) -> HttpFailure {
    match e {
        platforms::PlatformError::Store(s) => HttpFailure::from(s),
        other => HttpFailure::BadRequest(other.to_string()),
    }
}

/// Creates a platform of any challenge mode from JSON; returns what `platform add --json`
/// prints (secrets and credentials shown once).
fn create_platform(
    store: &Store,
    data_dir: &std::path::Path,
    name: &str,
    allow_des: bool,
    body: &Value,
    now: i64,
) -> Result<Value, HttpFailure> {
    use crate::challenge::{dynamic, intune::client};
    use crate::platforms::{DynamicOptions, IntuneOptions, NewPlatform};
    use crate::secrets::SecretFiles;
    use zeroize::Zeroizing;
    let required = |f: &str| {
        str_field(body, f).ok_or_else(|| {
            HttpFailure::BadRequest(format!("{f} is required for this challenge mode"))
        })
    };
    let new = NewPlatform {
        name,
        allow_des,
        now,
    };
    match str_field(body, "challenge").unwrap_or("static") {
        "static" => {
            let c =
                platforms::create_static(store, name, allow_des, now).map_err(platform_error)?;
            Ok(
                json!({"platform_id": c.platform_id, "scep_path": c.scep_path, "challenge": c.challenge}),
            )
        }
        "dynamic" => {
            let ttl_secs = match str_field(body, "challenge_ttl") {
                Some(t) => dynamic::parse_ttl(t).ok_or_else(|| {
                    HttpFailure::BadRequest("challenge_ttl takes e.g. 60m, 1h, 3600s".into())
                })?,
                None => dynamic::DEFAULT_TTL_SECS,
            };
            let max_outstanding = match body.get("max_outstanding").and_then(Value::as_u64) {
                Some(0) => {
                    return Err(HttpFailure::BadRequest(
                        "max_outstanding must be at least 1".into(),
                    ));
                }
                Some(n) => u32::try_from(n)
                    .map_err(|_| HttpFailure::BadRequest("max_outstanding too large".into()))?,
                None => dynamic::DEFAULT_MAX_OUTSTANDING,
            };
            let c = platforms::create_dynamic(
                store,
                name,
                allow_des,
                DynamicOptions {
                    ttl_secs,
                    max_outstanding,
                },
                now,
            )
            .map_err(platform_error)?;
            Ok(
                json!({"platform_id": c.platform_id, "scep_path": c.scep_path, "challenge_url_path": c.challenge_url_path, "username": c.username, "password": c.password}),
            )
        }
        "intune" => {
            let options = IntuneOptions {
                tenant: required("aad_tenant")?.to_owned(),
                client_id: required("aad_client_id")?.to_owned(),
                login_url: str_field(body, "intune_login_url")
                    .unwrap_or(client::DEFAULT_LOGIN_URL)
                    .to_owned(),
                graph_url: str_field(body, "intune_graph_url")
                    .unwrap_or(client::DEFAULT_GRAPH_URL)
                    .to_owned(),
            };
            let secret = Zeroizing::new(required("aad_client_secret")?.to_owned());
            let c = platforms::create_intune(
                store,
                &SecretFiles::new(data_dir),
                new,
                &options,
                &secret,
            )
            .map_err(platform_error)?;
            Ok(json!({"platform_id": c.platform_id, "scep_path": c.scep_path}))
        }
        "webhook" => {
            let secret = Zeroizing::new(required("webhook_secret")?.to_owned());
            let c = platforms::create_webhook(
                store,
                &SecretFiles::new(data_dir),
                new,
                required("webhook_url")?,
                &secret,
            )
            .map_err(platform_error)?;
            Ok(json!({"platform_id": c.platform_id, "scep_path": c.scep_path}))
        }
        other => Err(HttpFailure::BadRequest(format!(
            "unknown challenge mode {other:?} (static, dynamic, intune, webhook)"
        ))),
    }
}
