//! The session pool survives its sessions being logged out or closed under it
//! (an HSM client restart), and signs again without a restart of sceau.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::session::UserType;
use sceau::config::TokenRole;
use sceau::crypto;
use sceau::hsm::{Hsm, KeyAlgorithm};

fn other_context(softhsm: &support::hsm::SoftHsm) -> Pkcs11 {
    let context = Pkcs11::new(softhsm.module()).unwrap();
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("{e}"),
    }
    context
}

#[tokio::test]
async fn pool_signs_again_after_logout_and_library_restart() {
    let Some(softhsm) = support::hsm::isolated("pool_signs_again_after_logout_and_library_restart")
    else {
        return;
    };
    let hsm = Hsm::connect(&softhsm.settings(), &[TokenRole::Services])
        .await
        .unwrap();
    let pool = hsm.token(TokenRole::Services).unwrap().clone();
    let key = pool
        .clone()
        .generate_key_pair("pool-test".to_owned(), KeyAlgorithm::EcP256)
        .await
        .unwrap();
    let alg = key.algorithm.signature_algorithm();
    let sign_and_check = |label: &'static str| {
        let pool = pool.clone();
        let key = key.clone();
        async move {
            let signature = pool
                .sign(key.id, alg, label.as_bytes().to_vec())
                .await
                .unwrap_or_else(|e| panic!("signing {label}: {e}"));
            crypto::verify(&key.public_key, alg, label.as_bytes(), &signature).unwrap();
        }
    };
    sign_and_check("before").await;

    // 1. Another part of the process logs the token out: every session loses its login.
    {
        let context = other_context(&softhsm);
        let slot = context
            .get_slots_with_initialized_token()
            .unwrap()
            .into_iter()
            .find(|s| context.get_token_info(*s).unwrap().label().trim_end() == "sceau-services")
            .unwrap();
        let session = context.open_ro_session(slot).unwrap();
        session
            .login(UserType::User, Some(&softhsm.pin("sceau-services").into()))
            .or_else(|e| match e {
                Error::Pkcs11(RvError::UserAlreadyLoggedIn, _) => Ok(()),
                e => Err(e),
            })
            .unwrap();
        session.logout().unwrap();
    }
    sign_and_check("after logout").await;
    hsm.ping().await.unwrap();

    // 2. The library is finalised and re-initialised: every session handle is gone.
    other_context(&softhsm).finalize().unwrap();
    other_context(&softhsm);
    sign_and_check("after restart").await;

    // 3. The library is finalised and left so: the pool re-initialises it itself.
    other_context(&softhsm).finalize().unwrap();
    sign_and_check("after finalize").await;
    hsm.ping().await.unwrap();
}
