//! Tokens from an identity provider: RS256, ES256 and EdDSA tokens signed outside this
//! workspace's code (keys from `openssl genpkey`, tokens from `jsonwebtoken`) verify through
//! a JWKS URL served by the test; a rotated key is learnt on its first token; made-up key
//! ids cannot make the service fetch more than once per interval; while the provider is
//! down, an unknown key id is UNAVAILABLE, never accepted, and known keys keep working.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use blindledger_gate::{AuthError, ClaimNames, Jwks, JwksTiming, TokenVerifier};
use blindledger_policy::jose::{RawPublicKey, VerificationKey};
use blindledger_test_support::{eventually, BundleServer};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::support::{claims, now, AUDIENCE, ISSUER};

/// A private key from `openssl genpkey`, as PKCS#8 PEM, and its public JWK.
struct IdpKey {
    private_pem: String,
    jwk: Value,
}

fn idp_key(dir: &Path, kid: &str, args: &[&str]) -> IdpKey {
    let path = dir.join(format!("{kid}.pem"));
    let out = Command::new("openssl")
        .arg("genpkey")
        .args(args)
        .arg("-out")
        .arg(&path)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&path)
        .output()
        .unwrap();
    let public = String::from_utf8(public.stdout).unwrap();
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let jwk = match VerificationKey::parse(&public).unwrap().raw() {
        RawPublicKey::Rsa { n, e } => json!({"kty": "RSA", "n": b64(&n), "e": b64(&e)}),
        RawPublicKey::Ec { curve, point } => {
            let half = (point.len() - 1) / 2;
            json!({"kty": "EC", "crv": curve, "x": b64(&point[1..=half]), "y": b64(&point[1 + half..])})
        }
        RawPublicKey::Ed25519(x) => json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&x)}),
        RawPublicKey::Secret => unreachable!(),
    };
    let mut jwk = jwk;
    jwk["kid"] = kid.into();
    jwk["use"] = "sig".into();
    IdpKey {
        private_pem: std::fs::read_to_string(&path).unwrap(),
        jwk,
    }
}

fn token(key: &IdpKey, alg: Algorithm, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = key.jwk["kid"].as_str().map(str::to_string);
    let pem = key.private_pem.as_bytes();
    let encoding = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
        _ => EncodingKey::from_ed_pem(pem),
    }
    .unwrap();
    jsonwebtoken::encode(&header, claims, &encoding).unwrap()
}

fn publish(server: &BundleServer, keys: &[&IdpKey]) {
    let set = json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() });
    server.publish("jwks", set.to_string().into_bytes());
}

fn timing() -> JwksTiming {
    JwksTiming {
        refresh: Duration::from_secs(3600),
        min_interval: Duration::from_millis(500),
        timeout: Duration::from_secs(5),
    }
}

/// A verifier trusting only the provider's JWKS, reading Keycloak-style claims.
fn verifier(server: &BundleServer) -> TokenVerifier {
    let jwks = Jwks::new(&server.url("jwks"), timing()).unwrap();
    TokenVerifier::new(&BTreeMap::new(), ISSUER, AUDIENCE)
        .unwrap()
        .with_claims(ClaimNames {
            roles: "realm_access.roles".to_string(),
            tenants: "tenants".to_string(),
        })
        .with_jwks(jwks)
}

fn idp_claims() -> Value {
    let mut claims = claims();
    claims["roles"] = Value::Null;
    claims["realm_access"] = json!({"roles": ["teller", "auditor"]});
    // One space-separated string, as `scope` is written.
    claims["tenants"] = json!("acme globex");
    claims
}

#[tokio::test]
async fn rs256_es256_and_eddsa_tokens_verify_through_a_jwks_url() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = idp_key(
        dir.path(),
        "rsa-1",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let ec = idp_key(
        dir.path(),
        "ec-1",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let ed = idp_key(dir.path(), "ed-1", &["-algorithm", "ed25519"]);
    let server = BundleServer::start().await.unwrap();
    publish(&server, &[&rsa, &ec, &ed]);
    let verifier = verifier(&server);

    for (key, alg) in [
        (&rsa, Algorithm::RS256),
        (&ec, Algorithm::ES256),
        (&ed, Algorithm::EdDSA),
    ] {
        let principal = verifier
            .verify_async(&token(key, alg, &idp_claims()))
            .await
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(principal.subject, "alice");
        assert_eq!(principal.roles, ["teller", "auditor"]);
        assert_eq!(principal.tenants, ["acme", "globex"]);
    }

    // A token signed by the provider's key but for another audience, or expired: refused.
    let mut other = idp_claims();
    other["aud"] = "blindledger-audit".into();
    assert!(matches!(
        verifier
            .verify_async(&token(&rsa, Algorithm::RS256, &other))
            .await,
        Err(AuthError::InvalidClaims(_))
    ));
    let mut expired = idp_claims();
    expired["exp"] = (now() - 600).into();
    assert_eq!(
        verifier
            .verify_async(&token(&ec, Algorithm::ES256, &expired))
            .await
            .unwrap_err(),
        AuthError::Expired
    );
    // The RSA key's id with an ES256 header: the algorithm is checked against the key.
    let mut confused = token(&ec, Algorithm::ES256, &idp_claims());
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","kid":"rsa-1"}"#);
    confused = format!("{header}.{}", confused.split_once('.').unwrap().1);
    assert_eq!(
        verifier.verify_async(&confused).await.unwrap_err(),
        AuthError::WrongAlgorithm("ES256".into())
    );
}

#[tokio::test]
async fn a_rotated_key_is_learnt_and_made_up_key_ids_fetch_at_most_once_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let old = idp_key(dir.path(), "old", &["-algorithm", "ed25519"]);
    let new = idp_key(
        dir.path(),
        "new",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let server = BundleServer::start().await.unwrap();
    publish(&server, &[&old]);
    let verifier = verifier(&server);
    verifier
        .verify_async(&token(&old, Algorithm::EdDSA, &idp_claims()))
        .await
        .unwrap();

    // The provider rotates: the first token with the new key id makes the set be fetched
    // again (once the minimum interval has passed) and verifies.
    publish(&server, &[&old, &new]);
    accepted_eventually(&verifier, &token(&new, Algorithm::ES256, &idp_claims())).await;

    // Fifty tokens naming key ids nobody published: refused, with at most one fetch.
    let before = server.stats().requests;
    for i in 0..50 {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(format!("made-up-{i}"));
        let key = EncodingKey::from_ed_pem(old.private_pem.as_bytes()).unwrap();
        let forged = jsonwebtoken::encode(&header, &idp_claims(), &key).unwrap();
        assert!(matches!(
            verifier.verify_async(&forged).await,
            Err(AuthError::UnknownKey(_))
        ));
    }
    let fetched = server.stats().requests - before;
    assert!(fetched <= 1, "{fetched} fetches for 50 unknown key ids");
}

#[tokio::test]
async fn while_the_provider_is_down_unknown_key_ids_are_unavailable_and_known_ones_work() {
    let dir = tempfile::tempdir().unwrap();
    let known = idp_key(dir.path(), "known", &["-algorithm", "ed25519"]);
    let later = idp_key(dir.path(), "later", &["-algorithm", "ed25519"]);
    let server = BundleServer::start().await.unwrap();
    publish(&server, &[&known]);
    let verifier = verifier(&server);
    verifier
        .verify_async(&token(&known, Algorithm::EdDSA, &idp_claims()))
        .await
        .unwrap();

    server.set_failing(true);
    // Unknown until the next fetch (at most one per interval) fails; never accepted.
    let later_token = token(&later, Algorithm::EdDSA, &idp_claims());
    let err = eventually(
        "an unknown key id is UNAVAILABLE while the provider is down",
        Duration::from_secs(10),
        || {
            let verifier = verifier.clone();
            let later_token = later_token.clone();
            async move {
                match verifier.verify_async(&later_token).await {
                    Err(err @ AuthError::KeysUnavailable(_)) => Some(err),
                    Err(AuthError::UnknownKey(_)) => None,
                    other => panic!("{other:?}"),
                }
            }
        },
    )
    .await;
    assert_eq!(err.to_status().code(), tonic::Code::Unavailable);
    // The key fetched before still verifies its tokens.
    verifier
        .verify_async(&token(&known, Algorithm::EdDSA, &idp_claims()))
        .await
        .unwrap();

    // Back up and publishing the new key: accepted.
    server.set_failing(false);
    publish(&server, &[&known, &later]);
    accepted_eventually(&verifier, &later_token).await;
}

/// Waits (with a deadline) until `token` verifies: a key id not yet fetched is learnt on
/// the first fetch the minimum interval allows. Any refusal but "not known yet" fails.
async fn accepted_eventually(verifier: &TokenVerifier, token: &str) {
    eventually(
        "the new key is learnt",
        Duration::from_secs(10),
        || async move {
            match verifier.verify_async(token).await {
                Ok(_) => Some(()),
                Err(AuthError::UnknownKey(_) | AuthError::KeysUnavailable(_)) => None,
                Err(other) => panic!("{other}"),
            }
        },
    )
    .await;
}

#[test]
fn configured_key_files_may_be_rsa_ec_or_jwk() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = idp_key(
        dir.path(),
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let ec = idp_key(
        dir.path(),
        "ec",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let rsa_public = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(dir.path().join("rsa.pem"))
        .output()
        .unwrap()
        .stdout;
    let keys = BTreeMap::from([
        ("rsa".to_string(), String::from_utf8(rsa_public).unwrap()),
        ("ec".to_string(), ec.jwk.to_string()),
    ]);
    let verifier = TokenVerifier::new(&keys, ISSUER, AUDIENCE).unwrap();
    verifier
        .verify(&token(&rsa, Algorithm::RS256, &claims()))
        .unwrap();
    verifier
        .verify(&token(&ec, Algorithm::ES256, &claims()))
        .unwrap();

    // An HMAC secret or a P-521 key cannot be a token key.
    let secret = json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode([1u8; 32])}).to_string();
    let p521 = idp_key(
        dir.path(),
        "p521",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
    );
    for text in [secret, p521.jwk.to_string()] {
        let keys = BTreeMap::from([("k".to_string(), text)]);
        assert!(matches!(
            TokenVerifier::new(&keys, ISSUER, AUDIENCE),
            Err(AuthError::Key(_))
        ));
    }
}
