//! Elastic IP addresses: describe, allocate, associate, disassociate and
//! release, for the box's address and every seat's.

use aws_sdk_ec2::types::{Address, DomainType, Filter, TagSpecification};
use aws_sdk_ec2::Client;

use crate::aws::{ok_if, settled, AwsError, AwsResultExt, Lag};
use crate::ui::Ui;

/// Every address matching `filters` (DescribeAddresses has no pages).
pub async fn describe(ec2: &Client, filters: Vec<Filter>) -> Result<Vec<Address>, AwsError> {
    let out = ec2
        .describe_addresses()
        .set_filters((!filters.is_empty()).then_some(filters))
        .send()
        .await
        .ctx("ec2:DescribeAddresses")?;
    Ok(out.addresses().to_vec())
}

/// The address of a fresh allocation (EC2 may not know it for a moment).
pub async fn describe_one(
    ec2: &Client,
    ui: &Ui,
    allocation_id: &str,
) -> Result<Option<Address>, AwsError> {
    let out = settled(ui, &[Lag::FreshId], allocation_id, || {
        ec2.describe_addresses()
            .allocation_ids(allocation_id)
            .send()
    })
    .await
    .ctx("ec2:DescribeAddresses")?;
    Ok(out.addresses().first().cloned())
}

/// A new VPC address, tagged at allocation: its allocation id and IP.
pub async fn allocate(ec2: &Client, tags: TagSpecification) -> Result<(String, String), AwsError> {
    let out = ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .tag_specifications(tags)
        .send()
        .await
        .ctx("ec2:AllocateAddress")?;
    Ok((
        out.allocation_id().unwrap_or_default().to_string(),
        out.public_ip().unwrap_or_default().to_string(),
    ))
}

/// Associates the address with the instance, taking it from any other.
pub async fn associate(
    ec2: &Client,
    ui: &Ui,
    allocation_id: &str,
    instance_id: &str,
) -> Result<(), AwsError> {
    settled(ui, &[Lag::FreshId], allocation_id, || {
        ec2.associate_address()
            .allocation_id(allocation_id)
            .instance_id(instance_id)
            .allow_reassociation(true)
            .send()
    })
    .await
    .ctx("ec2:AssociateAddress")?;
    Ok(())
}

/// Ends an association; one that is gone already is success.
pub async fn disassociate(ec2: &Client, association_id: &str) -> Result<(), AwsError> {
    let sent = ec2
        .disassociate_address()
        .association_id(association_id)
        .send()
        .await;
    ok_if(
        "ec2:DisassociateAddress",
        sent,
        &["InvalidAssociationID.NotFound"],
    )
}

/// Releases an address; one that is released already is success.
pub async fn release(ec2: &Client, allocation_id: &str) -> Result<(), AwsError> {
    let sent = ec2
        .release_address()
        .allocation_id(allocation_id)
        .send()
        .await;
    ok_if(
        "ec2:ReleaseAddress",
        sent,
        &["InvalidAllocationID.NotFound"],
    )
}

/// Releases an address allocated moments ago (EC2 may not know it yet).
pub async fn release_fresh(ec2: &Client, ui: &Ui, allocation_id: &str) -> Result<(), AwsError> {
    settled(ui, &[Lag::FreshId], allocation_id, || {
        ec2.release_address().allocation_id(allocation_id).send()
    })
    .await
    .ctx("ec2:ReleaseAddress")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::replay::{ec2_client, ec2_refusal, operations};

    #[tokio::test]
    async fn releasing_what_is_released_already_succeeds() {
        let (ec2, replay) = ec2_client(vec![
            ec2_refusal("InvalidAssociationID.NotFound"),
            ec2_refusal("InvalidAllocationID.NotFound"),
        ]);
        disassociate(&ec2, "eipassoc-1").await.unwrap();
        release(&ec2, "eipalloc-1").await.unwrap();
        assert_eq!(
            operations(&replay),
            ["DisassociateAddress", "ReleaseAddress"]
        );
    }
}
