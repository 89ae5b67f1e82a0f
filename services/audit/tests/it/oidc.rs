//! Officers sign in through an OpenID Connect provider: the authorization code flow with
//! PKCE against a provider written here from the specifications (discovery, authorize,
//! token, JWKS; RS256 ID tokens signed with `jsonwebtoken` and an `openssl` key), then the
//! ID token is the session. A replayed code, a foreign `state`, a missing sign-in cookie,
//! a wrong nonce and a role the policy does not let sign in are all refused, with no
//! session set.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use blindledger_policy::jose::{RawPublicKey, VerificationKey};
use blindledger_test_support::TestDatabase;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::spawn_app_with;

const CLIENT_ID: &str = "blindledger-dashboard";
const CLIENT_SECRET: &str = "s3cret-of-the-dashboard";

/// What the provider issued and will accept.
struct Provider {
    base: String,
    private_pem: String,
    jwk: Value,
    /// code → (redirect_uri, code_challenge, nonce)
    codes: HashMap<String, (String, String, String)>,
    /// Roles of the next officer signing in.
    roles: Vec<String>,
    /// Put another nonce in the next ID tokens (a token replayed from another sign-in).
    wrong_nonce: bool,
}

type Shared = Arc<Mutex<Provider>>;

async fn discovery(State(idp): State<Shared>) -> Json<Value> {
    let base = idp.lock().unwrap().base.clone();
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn jwks(State(idp): State<Shared>) -> Json<Value> {
    Json(json!({ "keys": [idp.lock().unwrap().jwk.clone()] }))
}

#[derive(Deserialize)]
struct Authorize {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: String,
    nonce: String,
    code_challenge: String,
    code_challenge_method: String,
}

/// The officer is signed in at the provider already: a code at once (RFC 6749 4.1.2).
async fn authorize(State(idp): State<Shared>, Query(q): Query<Authorize>) -> Response {
    let valid = q.response_type == "code"
        && q.client_id == CLIENT_ID
        && q.scope.split(' ').any(|s| s == "openid")
        && q.code_challenge_method == "S256"
        && q.code_challenge.len() == 43;
    if !valid {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let code = format!("code-{}", uuid::Uuid::new_v4());
    idp.lock().unwrap().codes.insert(
        code.clone(),
        (q.redirect_uri.clone(), q.code_challenge, q.nonce),
    );
    Redirect::to(&format!("{}?code={code}&state={}", q.redirect_uri, q.state)).into_response()
}

#[derive(Deserialize)]
struct TokenRequest {
    grant_type: String,
    code: String,
    redirect_uri: String,
    client_id: String,
    code_verifier: String,
    client_secret: Option<String>,
}

/// RFC 6749 4.1.3 with RFC 7636 4.6: a code once, for its redirect URI, with the verifier
/// whose SHA-256 is the challenge.
async fn token(State(idp): State<Shared>, Form(t): Form<TokenRequest>) -> Response {
    let mut idp = idp.lock().unwrap();
    let Some((redirect_uri, challenge, nonce)) = idp.codes.remove(&t.code) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    let verified = URL_SAFE_NO_PAD.encode(Sha256::digest(t.code_verifier.as_bytes())) == challenge;
    let valid = t.grant_type == "authorization_code"
        && t.redirect_uri == redirect_uri
        && t.client_id == CLIENT_ID
        && t.client_secret.as_deref() == Some(CLIENT_SECRET)
        && verified;
    if !valid {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let nonce = if idp.wrong_nonce {
        "another-sign-in".to_string()
    } else {
        nonce
    };
    let claims = json!({
        "iss": idp.base, "sub": "olivia", "aud": CLIENT_ID, "iat": now, "exp": now + 600,
        "nonce": nonce, "realm_access": {"roles": idp.roles},
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("idp-1".into());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(idp.private_pem.as_bytes()).unwrap();
    let id_token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    Json(json!({"access_token": "opaque", "token_type": "Bearer", "id_token": id_token}))
        .into_response()
}

async fn start_provider(dir: &std::path::Path) -> (SocketAddr, Shared) {
    let key = dir.join("idp.pem");
    let status = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .status()
        .expect("openssl runs");
    assert!(status.success());
    let public = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .output()
        .unwrap()
        .stdout;
    let RawPublicKey::Rsa { n, e } = VerificationKey::parse(&String::from_utf8(public).unwrap())
        .unwrap()
        .raw()
    else {
        unreachable!()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let idp = Arc::new(Mutex::new(Provider {
        base: format!("http://{addr}"),
        private_pem: std::fs::read_to_string(&key).unwrap(),
        jwk: json!({"kty": "RSA", "kid": "idp-1", "use": "sig", "alg": "RS256",
                    "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e)}),
        codes: HashMap::new(),
        roles: vec!["auditor".into()],
        wrong_nonce: false,
    }));
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/jwks", get(jwks))
        .with_state(idp.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, idp)
}

/// The `name=value` of each `Set-Cookie`.
fn set_cookies(response: &reqwest::Response) -> HashMap<String, String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn officers_sign_in_through_an_openid_connect_provider() {
    let db = TestDatabase::sqlite().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (idp_addr, idp) = start_provider(dir.path()).await;
    let secret = dir.path().join("client.secret");
    std::fs::write(&secret, format!("{CLIENT_SECRET}\n")).unwrap();
    // The callback URL names the service's own port, known once it is bound: the
    // provider accepts any redirect URI, and the service's is checked on the way back.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let audit_addr = listener.local_addr().unwrap();
    drop(listener);
    let app = spawn_app_with(db.url(), |config| {
        config.listen_addr = audit_addr;
        config.oidc_issuer = Some(format!("http://{idp_addr}"));
        config.oidc_client_id = Some(CLIENT_ID.into());
        config.oidc_client_secret_file = Some(secret.clone());
        config.oidc_redirect_url = Some(format!("http://{audit_addr}/login/callback"));
        config.token_roles_claim = "realm_access.roles".into();
    })
    .await;
    let http = &app.http;
    let login = http
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(login.contains("sign-in-oidc"), "{login}");

    // Off to the provider, and back with a code.
    let sign_in = || async {
        let started = http.get(app.url("/login/oidc")).send().await.unwrap();
        assert_eq!(started.status(), 303);
        let cookie = set_cookies(&started)["bl_audit_oidc"].clone();
        let authorize = started.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            authorize.contains("code_challenge_method=S256"),
            "{authorize}"
        );
        let back = http.get(&authorize).send().await.unwrap();
        assert_eq!(back.status(), 303);
        let callback = back.headers()["location"].to_str().unwrap().to_owned();
        (cookie, callback)
    };
    let (cookie, callback) = sign_in().await;
    let done = http
        .get(&callback)
        .header(header::COOKIE, format!("bl_audit_oidc={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let cookies = set_cookies(&done);
    let session = cookies["bl_audit_session"].clone();
    assert_eq!(session.split('.').count(), 3, "the ID token is the session");
    assert_eq!(
        cookies["bl_audit_oidc"], "",
        "the sign-in cookie is cleared"
    );
    let dashboard = http
        .get(app.url("/"))
        .header(header::COOKIE, format!("bl_audit_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(dashboard.status(), 200);

    // The same code again: the provider refuses it; no session.
    let replay = http
        .get(&callback)
        .header(header::COOKIE, format!("bl_audit_oidc={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    assert!(!set_cookies(&replay).contains_key("bl_audit_session"));

    // A response for another sign-in (its state is not this browser's), or none started.
    let (_, foreign) = sign_in().await;
    let (mine, _) = sign_in().await;
    for cookie in [Some(mine), None] {
        let mut request = http.get(&foreign);
        if let Some(cookie) = &cookie {
            request = request.header(header::COOKIE, format!("bl_audit_oidc={cookie}"));
        }
        let refused = request.send().await.unwrap();
        assert_eq!(refused.status(), 401, "{cookie:?}");
        assert!(!set_cookies(&refused).contains_key("bl_audit_session"));
    }

    // An ID token with another sign-in's nonce.
    idp.lock().unwrap().wrong_nonce = true;
    let (cookie, callback) = sign_in().await;
    let refused = http
        .get(&callback)
        .header(header::COOKIE, format!("bl_audit_oidc={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.text().await.unwrap().contains("nonce"));
    idp.lock().unwrap().wrong_nonce = false;

    // A teller signs in at the provider, but the policy does not let tellers in.
    idp.lock().unwrap().roles = vec!["teller".into()];
    let (cookie, callback) = sign_in().await;
    let denied = http
        .get(&callback)
        .header(header::COOKIE, format!("bl_audit_oidc={cookie}"))
        .send()
        .await
        .unwrap();
    assert!(!set_cookies(&denied).contains_key("bl_audit_session"));
    assert!(denied.text().await.unwrap().contains("refused by policy"));
    app.stop().await;
}
