//! The EC2 gateways, one file per AWS type. Both the single box and the
//! labs call them, with slices of ids where EC2 takes many at once, so
//! pagination, batching and the "not found right after create" retries
//! ([`crate::aws::settled`]) are written once, here.

pub mod addresses;
pub mod dry_runs;
pub mod instances;
pub mod key_pairs;
pub mod lookups;
pub mod security_groups;
pub mod volumes;

use aws_sdk_ec2::types::Filter;

/// The most ids EC2 takes in one DescribeInstances, TerminateInstances or
/// DescribeVolumes call.
const IDS_PER_CALL: usize = 500;

/// An EC2 filter from plain values.
pub fn filter(name: impl Into<String>, values: &[&str]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
        .build()
}

#[cfg(test)]
pub(crate) mod replay {
    //! An EC2 client answering from a fixed list of responses, for unit
    //! tests of the gateways' idempotency rules (no network). The replay
    //! client records each request, so a test can count the calls made.

    use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
    use aws_smithy_types::body::SdkBody;

    /// An answer EC2 gives with `status` and the XML `body`.
    pub fn answer(status: u16, body: &str) -> ReplayEvent {
        ReplayEvent::new(
            http::Request::builder()
                .uri("https://ec2.us-east-1.amazonaws.com/")
                .body(SdkBody::empty())
                .unwrap(),
            http::Response::builder()
                .status(status)
                .body(SdkBody::from(body.to_string()))
                .unwrap(),
        )
    }

    /// An EC2 error answer with `code`.
    pub fn refusal(code: &str) -> ReplayEvent {
        answer(
            400,
            &format!("<Response><Errors><Error><Code>{code}</Code><Message>{code}</Message></Error></Errors><RequestID>r</RequestID></Response>"),
        )
    }

    pub fn client(events: Vec<ReplayEvent>) -> (aws_sdk_ec2::Client, StaticReplayClient) {
        let replay = StaticReplayClient::new(events);
        let config = aws_sdk_ec2::Config::builder()
            .http_client(replay.clone())
            .behavior_version_latest()
            .region(aws_sdk_ec2::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            ))
            .build();
        (aws_sdk_ec2::Client::from_conf(config), replay)
    }

    /// The `Action=` of every request the client was sent, in order.
    pub fn actions(replay: &StaticReplayClient) -> Vec<String> {
        replay
            .actual_requests()
            .map(|r| {
                let body = std::str::from_utf8(r.body().bytes().unwrap_or_default()).unwrap_or("");
                body.split('&')
                    .find_map(|p| p.strip_prefix("Action="))
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    }
}
