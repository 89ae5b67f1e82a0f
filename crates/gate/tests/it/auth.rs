//! Token issuing and verification: every way a token can be wrong maps to its error.

use std::collections::BTreeMap;
use std::time::Duration;

use blindledger_gate::{generate_keypair, AuthError, TokenIssuer, TokenVerifier};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::support::{claims, ed_token, keys, now, raw_token, AUDIENCE, ISSUER, KID};

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

#[test]
fn issued_tokens_verify_with_their_roles_and_tenants() {
    let keys = keys();
    let issuer = TokenIssuer::new(&keys.private_pem, KID, ISSUER, AUDIENCE).unwrap();
    let roles = vec!["teller".to_string(), "auditor".to_string()];
    let tenants = vec!["acme".to_string()];
    let token = issuer
        .issue("alice", &roles, &tenants, Duration::from_secs(60))
        .unwrap();
    let principal = keys.verifier.verify(&token).unwrap();
    assert_eq!(principal.subject, "alice");
    assert_eq!(principal.roles, roles);
    assert_eq!(principal.tenants, tenants);
}

#[test]
fn roles_and_tenants_default_to_empty_and_aud_may_be_a_list() {
    let keys = keys();
    let claims = without(without(claims(), "roles"), "tenants");
    let claims = with(claims, "aud", json!(["other", AUDIENCE]));
    let principal = keys
        .verifier
        .verify(&ed_token(&keys.private_pem, KID, &claims))
        .unwrap();
    assert!(principal.roles.is_empty() && principal.tenants.is_empty());
}

#[test]
fn expiry_and_not_before_are_checked_with_leeway() {
    let keys = keys();
    let verify = |claims: Value| {
        keys.verifier
            .verify(&ed_token(&keys.private_pem, KID, &claims))
    };
    assert_eq!(
        verify(with(claims(), "exp", json!(now() - 120))).unwrap_err(),
        AuthError::Expired
    );
    assert!(
        verify(with(claims(), "exp", json!(now() - 10))).is_ok(),
        "within the leeway"
    );
    let early = with(claims(), "nbf", json!(now() + 120));
    assert_eq!(verify(early).unwrap_err(), AuthError::NotYetValid);
    assert!(
        verify(with(claims(), "nbf", json!(now() + 10))).is_ok(),
        "within the leeway"
    );
}

#[test]
fn signatures_by_other_or_unknown_keys_are_rejected() {
    let keys = keys();
    let (other_private, _) = generate_keypair().unwrap();
    let forged = ed_token(&other_private, KID, &claims());
    assert_eq!(
        keys.verifier.verify(&forged).unwrap_err(),
        AuthError::BadSignature
    );
    let unknown = ed_token(&keys.private_pem, "k9", &claims());
    assert_eq!(
        keys.verifier.verify(&unknown).unwrap_err(),
        AuthError::UnknownKey("k9".into())
    );
    let no_kid = raw_token(&json!({"alg": "EdDSA"}), &claims(), &[0; 64]);
    assert!(matches!(
        keys.verifier.verify(&no_kid),
        Err(AuthError::Malformed(_))
    ));
}

#[test]
fn algorithms_other_than_eddsa_are_rejected() {
    let keys = keys();
    let none = raw_token(&json!({"alg": "none", "kid": KID}), &claims(), b"");
    assert_eq!(
        keys.verifier.verify(&none).unwrap_err(),
        AuthError::WrongAlgorithm("none".into())
    );
    // The classic confusion attack: HMAC keyed with the (public) verification key.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(KID.to_string());
    let secret = EncodingKey::from_secret(keys.public_pem.as_bytes());
    let hs256 = jsonwebtoken::encode(&header, &claims(), &secret).unwrap();
    assert_eq!(
        keys.verifier.verify(&hs256).unwrap_err(),
        AuthError::WrongAlgorithm("HS256".into())
    );
    let rs256 = raw_token(&json!({"alg": "RS256", "kid": KID}), &claims(), &[1; 256]);
    assert_eq!(
        keys.verifier.verify(&rs256).unwrap_err(),
        AuthError::WrongAlgorithm("RS256".into())
    );
}

#[test]
fn required_claims_are_enforced() {
    let keys = keys();
    let verify = |claims: Value| {
        keys.verifier
            .verify(&ed_token(&keys.private_pem, KID, &claims))
    };
    let invalid = |claims: Value| matches!(verify(claims), Err(AuthError::InvalidClaims(_)));
    assert!(invalid(without(claims(), "sub")), "missing sub");
    assert!(invalid(with(claims(), "sub", json!(""))), "empty sub");
    assert!(invalid(without(claims(), "exp")), "missing exp");
    assert!(
        invalid(with(claims(), "iss", json!("https://evil.test"))),
        "wrong iss"
    );
    assert!(invalid(without(claims(), "iss")), "missing iss");
    assert!(
        invalid(with(claims(), "aud", json!("other-service"))),
        "wrong aud"
    );
    assert!(invalid(without(claims(), "aud")), "missing aud");
    assert!(invalid(with(claims(), "roles", json!(7))), "roles a number");
    assert!(
        invalid(with(claims(), "roles", json!({"admin": true}))),
        "roles an object"
    );
    assert!(
        invalid(with(claims(), "roles", json!(["teller", 7]))),
        "roles not all strings"
    );
    let many: Vec<String> = (0..65).map(|i| format!("r{i}")).collect();
    assert!(
        invalid(with(claims(), "roles", json!(many))),
        "too many roles"
    );
    // One space-separated string, as identity providers write `scope`, is a list.
    let principal = verify(with(claims(), "roles", json!("teller auditor"))).unwrap();
    assert_eq!(principal.roles, ["teller", "auditor"]);
}

#[test]
fn garbage_is_malformed_and_messages_carry_no_token() {
    let keys = keys();
    for token in ["", "abc", "a.b", "a.b.c.d", "!!!.e30.sig"] {
        let error = keys.verifier.verify(token).unwrap_err();
        assert!(
            matches!(error, AuthError::Malformed(_)),
            "{token:?}: {error:?}"
        );
    }
    let token = ed_token(
        &keys.private_pem,
        KID,
        &with(claims(), "exp", json!(now() - 120)),
    );
    let message = keys.verifier.verify(&token).unwrap_err().to_string();
    assert!(!message.contains(&token) && !message.contains("alice"));
}

#[test]
fn bad_keys_are_refused_at_construction() {
    let bad = BTreeMap::from([(
        KID.to_string(),
        "-----BEGIN PUBLIC KEY-----\nAAAA\n".to_string(),
    )]);
    assert!(matches!(
        TokenVerifier::new(&bad, ISSUER, AUDIENCE),
        Err(AuthError::Key(_))
    ));
    let (_, public_pem) = generate_keypair().unwrap();
    let issuer = TokenIssuer::new(&public_pem, KID, ISSUER, AUDIENCE);
    assert!(matches!(issuer, Err(AuthError::Key(_))));
}
