//! A revocation that lands while a revoked phone's read is being served: the
//! page read just before it is not handed over.

use std::sync::Arc;

use axum::http::StatusCode;
use doorstep_domain::network::DeviceId;
use serde_json::json;

use crate::helpers::{Backend, TestApp, batch, new_visit};
use crate::watched::Watched;

const NET: &str = "east-dorset";

#[tokio::test]
async fn a_revocation_landing_during_a_read_withholds_that_page() {
    for read in ["/sync/v1/pull", "/sync/v1/forks"] {
        let dir = tempfile::tempdir().unwrap();
        let (inner, schema) = Backend::Sqlite.storage(&dir).await;
        let device = DeviceId::parse("phone-1").unwrap();
        let app = TestApp::over(
            dir,
            schema,
            Arc::new(Watched::revoking_on_read(inner, device)),
        );
        let writer = app.device_token(NET, "para-2", "phone-2");
        let (status, _) = app
            .push(
                &writer,
                &batch(NET, "phone-2", vec![new_visit("para-2", "phone-2", 1)]),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let phone = app.device_token(NET, "para-1", "phone-1");
        let (status, body) = app.get(&phone, read).await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::FORBIDDEN, &json!("device_revoked")),
            "{read}: {body}"
        );
    }
}
