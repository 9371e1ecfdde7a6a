//! Test support for the gateways' unit tests: SDK clients that answer
//! from a fixed list of responses and record what they were asked,
//! without a network (the SDK's `StaticReplayClient`).

use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_runtime_api::http::{Request, Response};
use aws_smithy_types::body::SdkBody;

/// Answers the requests in order with `(status, body)`; a request beyond
/// them fails the call.
pub fn answers<B: AsRef<str>>(responses: &[(u16, B)]) -> StaticReplayClient {
    StaticReplayClient::new(
        responses
            .iter()
            .map(|(status, body)| answer(*status, body.as_ref()))
            .collect(),
    )
}

/// One answer with `status` and `body`.
pub fn answer(status: u16, body: &str) -> ReplayEvent {
    let status = status.try_into().expect("a valid status");
    ReplayEvent::new(
        Request::new(SdkBody::empty()),
        Response::new(status, SdkBody::from(body.to_string())),
    )
}

/// EC2's error answer with `code` (the query protocol's XML).
pub fn ec2_refusal(code: &str) -> ReplayEvent {
    answer(
        400,
        &format!("<Response><Errors><Error><Code>{code}</Code><Message>{code}</Message></Error></Errors><RequestID>r</RequestID></Response>"),
    )
}

/// An EC2 client answering with `events`, and the replay that records
/// what it was asked.
pub fn ec2_client(events: Vec<ReplayEvent>) -> (aws_sdk_ec2::Client, StaticReplayClient) {
    let replay = StaticReplayClient::new(events);
    let config = aws_sdk_ec2::Config::builder()
        .http_client(replay.clone())
        .behavior_version_latest()
        .region(aws_sdk_ec2::config::Region::new(REGION))
        .credentials_provider(credentials())
        .build();
    (aws_sdk_ec2::Client::from_conf(config), replay)
}

/// An SSM client answering through `replay`.
pub fn ssm_client(replay: &StaticReplayClient) -> aws_sdk_ssm::Client {
    let config = aws_sdk_ssm::Config::builder()
        .http_client(replay.clone())
        .behavior_version_latest()
        .region(aws_sdk_ssm::config::Region::new(REGION))
        .credentials_provider(credentials())
        .build();
    aws_sdk_ssm::Client::from_conf(config)
}

/// The bodies of the requests the client was sent, in order.
pub fn bodies(replay: &StaticReplayClient) -> Vec<String> {
    replay
        .actual_requests()
        .map(|r| String::from_utf8_lossy(r.body().bytes().unwrap_or_default()).into_owned())
        .collect()
}

/// The operations the client was asked for: the JSON protocols' target
/// header (`AmazonSSM.PutParameter`), or the query protocol's `Action`.
pub fn operations(replay: &StaticReplayClient) -> Vec<String> {
    replay
        .actual_requests()
        .map(|r| match r.headers().get("x-amz-target") {
            Some(target) => target.to_string(),
            None => String::from_utf8_lossy(r.body().bytes().unwrap_or_default())
                .split('&')
                .find_map(|field| field.strip_prefix("Action="))
                .unwrap_or_default()
                .to_string(),
        })
        .collect()
}

/// Static test credentials and a region: all a client needs to sign.
pub const REGION: &str = "us-east-1";

/// One credentials type serves every SDK client (each re-exports it).
pub fn credentials() -> aws_sdk_ssm::config::Credentials {
    aws_sdk_ssm::config::Credentials::new("AKIDTEST", "secret", None, None, "replay")
}
