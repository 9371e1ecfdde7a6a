//! EC2 key pairs: describe, import and delete.

use aws_sdk_ec2::primitives::Blob;
use aws_sdk_ec2::types::{Filter, KeyPairInfo, TagSpecification};
use aws_sdk_ec2::Client;

use crate::aws::{AwsError, AwsResultExt};

/// The key pairs matching `filters`, with their public keys.
pub async fn describe(ec2: &Client, filters: Vec<Filter>) -> Result<Vec<KeyPairInfo>, AwsError> {
    let out = ec2
        .describe_key_pairs()
        .set_filters((!filters.is_empty()).then_some(filters))
        .include_public_key(true)
        .send()
        .await
        .ctx("ec2:DescribeKeyPairs")?;
    Ok(out.key_pairs().to_vec())
}

/// Imports the public key (an OpenSSH line) as key pair `name`.
pub async fn import(
    ec2: &Client,
    name: &str,
    public_key: String,
    tags: TagSpecification,
) -> Result<(), AwsError> {
    ec2.import_key_pair()
        .key_name(name)
        .public_key_material(Blob::new(public_key.into_bytes()))
        .tag_specifications(tags)
        .send()
        .await
        .ctx("ec2:ImportKeyPair")?;
    Ok(())
}

/// Key pair names are unique per region: deletes the pair called `name`.
pub async fn delete(ec2: &Client, name: &str) -> Result<(), AwsError> {
    ec2.delete_key_pair()
        .key_name(name)
        .send()
        .await
        .ctx("ec2:DeleteKeyPair")?;
    Ok(())
}
