//! The brand's tags mirrored as WeCom corp tags (group "Siyu"), so a code's tags reach WeCom.

use super::LiveCodeError;
use crate::connect::client::WecomApi;
use crate::platform::TenantId;
use crate::platform::db::{Db, DbError, sql};

/// The WeCom corp tag mirroring a Siyu tag, created in the group "Siyu" the first time.
pub async fn wecom_tag_id(
    db: &Db,
    api: &WecomApi,
    tenant: TenantId,
    tag_id: i64,
    name: &str,
) -> Result<String, LiveCodeError> {
    let known: Option<(String,)> = db
        .fetch_optional(
            &sql("SELECT wecom_tag_id FROM wecom_tags WHERE tenant_id = $1 AND tag_id = $2")
                .bind(tenant)
                .bind(tag_id),
        )
        .await?;
    if let Some((id,)) = known {
        return Ok(id);
    }
    let id = match api.add_corp_tag("Siyu", name).await {
        Ok(id) => id,
        // The tag exists in WeCom already (made by hand, or by an earlier attempt): find it.
        Err(e) if e.errcode() == Some(40071) => {
            let list = api.get_corp_tag_list().await?;
            list["tag_group"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|g| g["group_name"] == "Siyu")
                .flat_map(|g| g["tag"].as_array().cloned().unwrap_or_default())
                .find(|t| t["name"] == name)
                .and_then(|t| t["id"].as_str().map(str::to_owned))
                .ok_or(e)?
        }
        Err(e) => return Err(e.into()),
    };
    db.execute(
        &sql("INSERT INTO wecom_tags (tenant_id, tag_id, wecom_tag_id) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, tag_id) DO NOTHING")
            .bind(tenant)
            .bind(tag_id)
            .bind(id.as_str()),
    )
    .await?;
    Ok(id)
}

/// WeCom ids of tags already mirrored.
pub async fn wecom_tag_ids(
    db: &Db,
    tenant: TenantId,
    tag_ids: &[i64],
) -> Result<Vec<String>, DbError> {
    let mut out = Vec::with_capacity(tag_ids.len());
    for t in tag_ids {
        let row: Option<(String,)> = db
            .fetch_optional(
                &sql("SELECT wecom_tag_id FROM wecom_tags WHERE tenant_id = $1 AND tag_id = $2")
                    .bind(tenant)
                    .bind(*t),
            )
            .await?;
        out.extend(row.map(|r| r.0));
    }
    Ok(out)
}
