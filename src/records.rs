//! What a built target leaves behind: its records in the metadata file, each runtime
//! image's SBOM and every image's provenance statement beside it, and with `--push` the
//! pushed images and indexes, signed and attested with `--sign-key`.

use crate::engine::ProgressMode;
use crate::error::Result;
use crate::finish::Outcome;
use crate::metadata;
use crate::plan::{Plan, TargetPlan};
use crate::publish;
use crate::publish::referrers::{Artifact, Subject};
use crate::runtime::Variant;
use crate::stages::{Stage, StageTimes};
use crate::summary;

/// Records (or pushes, then records) the target's images, signs what was pushed, writes
/// the SBOMs and statements beside the metadata file and appends the records to it.
/// What the summary shows is the runtime image's digest (or local id).
pub async fn record(
    plan: &Plan,
    target: &TargetPlan<'_>,
    outcomes: &[Outcome],
    inputs: &str,
    mut times: StageTimes,
) -> Result<summary::Done> {
    // Metadata, or publish and then metadata; each runtime image's SBOM beside it.
    let started = std::time::Instant::now();
    let mut records = match &plan.destination {
        None => local_records(target, outcomes).await,
        Some((destination, credentials)) => {
            publish_all(
                (destination, credentials),
                plan.compression,
                plan.signer.as_ref(),
                target,
                outcomes,
            )
            .await?
        }
    };
    let platform_names = target.platform_names();
    // Signed first, every record; the files beside the metadata are written only once
    // all of it succeeded, so a failed signature leaves them as they were.
    let mut beside: Vec<(Option<&String>, String)> = Vec::new();
    for record in records.iter_mut() {
        let outcome = outcomes
            .iter()
            .find(|o| o.images.iter().any(|i| i.reference() == record.reference))
            .unwrap_or(&outcomes[0]);
        // A pushed index stands for every platform; its SBOM is the first platform's
        // (the same packages, their architectures apart).
        let sbom = outcome.sbom_of(record.kind);
        let mut subjects = vec![(record.reference.clone(), record.digest.clone())];
        subjects.extend(record.manifests.iter().map(|m| {
            (
                format!("{}@{}", record.reference, m.platform),
                m.digest.clone(),
            )
        }));
        let statement = crate::provenance::statement(
            &subjects,
            &crate::provenance::Inputs {
                target: &target.target.to_string(),
                source_image: &outcome.source.name,
                source_digest: &outcome.source.digest,
                profile: &plan.profile.name,
                platforms: &platform_names,
                no_cache: plan.no_cache,
                compile_once: plan.compile_once,
                compression: plan.destination.as_ref().map(|_| plan.compression),
                epoch: &outcome.epoch,
            },
        );
        let statement =
            serde_json::to_string_pretty(&statement).expect("a statement serializes") + "\n";
        if let (Some(signer), Some((destination, credentials))) = (&plan.signer, &plan.destination)
        {
            sign_pushed(
                destination,
                credentials,
                signer,
                &subjects,
                &statement,
                &outcome.epoch,
            )
            .await?;
            record.signed_with = Some(signer.fingerprint.clone());
        }
        record.inputs = Some(inputs.to_string());
        beside.push((sbom, statement));
    }
    if plan.destination.is_some() {
        times.add(Stage::Push, started.elapsed());
    }
    if plan.progress.resolve() == ProgressMode::Plain {
        eprintln!("[{}] stages: {}", target.target, times.line());
    }
    for record in records.iter_mut() {
        record.stages = Some(times.clone());
    }
    for (record, (sbom, statement)) in records.iter_mut().zip(beside) {
        if let Some(sbom) = sbom {
            record.sbom = metadata::write_beside(
                &plan.metadata_file,
                metadata::SBOM,
                &record.reference,
                sbom,
            )?;
        }
        record.provenance = metadata::write_beside(
            &plan.metadata_file,
            metadata::PROVENANCE,
            &record.reference,
            &statement,
        )?;
    }
    metadata::append(&plan.metadata_file, &records)?;
    // What the summary shows: the runtime image's digest (or local id).
    Ok(summary::Done::Built(
        records
            .iter()
            .find(|r| r.kind == Variant::Runtime)
            .or(records.first())
            .map(|r| r.digest.clone())
            .unwrap_or_default(),
    ))
}

/// Signs every pushed digest (the index and each platform's manifest) and attaches the
/// signed provenance statement to each, beside them in the registry, in both of cosign's
/// forms: the `.sig`/`.att` tags (skopeo, podman, cosign) and Sigstore bundles attached
/// as referrers (cosign v3).
async fn sign_pushed(
    destination: &publish::Destination,
    credentials: &Option<publish::Credentials>,
    signer: &crate::sign::Signer,
    subjects: &[(String, String)],
    statement: &str,
    epoch: &str,
) -> Result<()> {
    use crate::sign::bundle;
    let attestation = signer.attestation(statement.as_bytes(), crate::provenance::PREDICATE_TYPE);
    for (name, digest) in subjects {
        let signature = signer.signature(&destination.repository, digest);
        publish::push_attachment(destination, digest, "sig", &signature, credentials).await?;
        publish::push_attachment(destination, digest, "att", &attestation, credentials).await?;
        let subject = Subject::read(destination, credentials, digest).await?;
        let signed = bundle::statement(digest, bundle::SIGNED, serde_json::json!({}));
        for (statement, predicate_type) in [
            (signed.as_slice(), bundle::SIGNED),
            (statement.as_bytes(), crate::provenance::PREDICATE_TYPE),
        ] {
            let at = (destination, credentials);
            attach_bundle(at, signer, &subject, statement, predicate_type, epoch).await?;
        }
        eprintln!("signed {name} ({digest}) with {}", signer.fingerprint);
    }
    Ok(())
}

/// `statement` signed in a Sigstore bundle, attached to `subject`.
async fn attach_bundle(
    (destination, credentials): (&publish::Destination, &Option<publish::Credentials>),
    signer: &crate::sign::Signer,
    subject: &Subject,
    statement: &[u8],
    predicate_type: &str,
    epoch: &str,
) -> Result<()> {
    use crate::sign::bundle;
    let data = signer.bundle(statement);
    let artifact = Artifact {
        artifact_type: bundle::MEDIA_TYPE,
        data: &data,
        annotations: bundle::annotations(predicate_type, epoch),
    };
    publish::referrers::attach(destination, credentials, subject, &artifact).await?;
    Ok(())
}

/// The records of images kept in the local store: the image id and its size.
async fn local_records(target: &TargetPlan<'_>, outcomes: &[Outcome]) -> Vec<metadata::Record> {
    let mut records = Vec::new();
    for (outcome, platform) in outcomes.iter().zip(&target.platforms) {
        let engine = platform.engine();
        for image in outcome.images.iter() {
            let size = engine
                .docker()
                .inspect_image(&image.id)
                .await
                .ok()
                .and_then(|i| i.size)
                .unwrap_or(0);
            records.push(record_of(
                image.variant,
                outcome,
                (&image.repository, &image.tag),
                (image.id.clone(), size.max(0) as u64),
                vec![platform.platform.to_string()],
            ));
        }
    }
    records
}

/// Pushes every platform's images, then an index per tag; returns their records.
async fn publish_all(
    (destination, credentials): (&publish::Destination, &Option<publish::Credentials>),
    compression: publish::Compression,
    signer: Option<&crate::sign::Signer>,
    target: &TargetPlan<'_>,
    outcomes: &[Outcome],
) -> Result<Vec<metadata::Record>> {
    let mut records = Vec::new();
    for image in outcomes[0].images.iter() {
        let kind = image.variant;
        let tag = target.target.tag_of(kind);
        let mut entries = Vec::new();
        for (outcome, p) in outcomes.iter().zip(&target.platforms) {
            let image = outcome
                .images
                .get(kind)
                .expect("every platform makes every variant");
            // From the engine that built it; the index below joins them. The digest is
            // dpy's own, from the manifest's bytes: what the index lists and is signed.
            let manifest =
                publish::push(p.engine(), destination, image, credentials, compression).await?;
            eprintln!("pushed {} ({})", image.reference(), manifest.digest);
            if let Some(sbom) = outcome.sbom_of(kind) {
                attach_sboms(
                    (destination, credentials),
                    signer,
                    &manifest,
                    sbom,
                    &outcome.epoch,
                )
                .await?;
            }
            entries.push((p.platform.clone(), manifest));
        }
        let digest = publish::push_index(destination, &tag, &entries, credentials).await?;
        let reference = format!("{}:{tag}", destination.repository);
        println!("{reference}@{digest}");
        let mut record = record_of(
            kind,
            &outcomes[0],
            (&destination.repository, &tag),
            (digest, entries[0].1.compressed_size),
            target.platform_names(),
        );
        record.compression = Some(compression);
        record.manifests = entries
            .iter()
            .map(|(p, m)| metadata::PlatformManifest {
                platform: p.to_string(),
                digest: m.digest.clone(),
            })
            .collect();
        records.push(record);
    }
    Ok(records)
}

/// The image's SBOM, in SPDX and in CycloneDX, attached to its pushed manifest as
/// referrers (`publish::referrers`), where `trivy image --sbom-sources oci`, oras and
/// cosign v3 look. Each platform's manifest gets its own platform's SBOM.
///
/// With a signing key, each also goes as a signed attestation in a Sigstore bundle
/// (`cosign verify-attestation --type spdxjson|cyclonedx` reads it).
async fn attach_sboms(
    (destination, credentials): (&publish::Destination, &Option<publish::Credentials>),
    signer: Option<&crate::sign::Signer>,
    manifest: &publish::PushedManifest,
    spdx: &str,
    epoch: &str,
) -> Result<()> {
    let subject = Subject::pushed(destination, credentials, manifest).await?;
    let cyclonedx = crate::cyclonedx::from_spdx(spdx)?;
    // The build's epoch, not the clock: pushing the same build again writes the same
    // referrers.
    let annotations: std::collections::BTreeMap<String, String> =
        [(crate::labels::CREATED.to_string(), epoch.to_string())].into();
    for (artifact_type, data) in [
        (crate::distill::sbom::MEDIA_TYPE, spdx),
        (crate::cyclonedx::MEDIA_TYPE, cyclonedx.as_str()),
    ] {
        let artifact = Artifact {
            artifact_type,
            data: data.as_bytes(),
            annotations: annotations.clone(),
        };
        let digest =
            publish::referrers::attach(destination, credentials, &subject, &artifact).await?;
        eprintln!("attached {artifact_type} to {} ({digest})", manifest.digest);
    }
    if let Some(signer) = signer {
        use crate::sign::bundle;
        for (predicate_type, document) in [(bundle::SPDX, spdx), (bundle::CYCLONEDX, &cyclonedx)] {
            let predicate: serde_json::Value = serde_json::from_str(document)
                .map_err(|e| crate::error::Error::Distill(format!("the SBOM is not JSON: {e}")))?;
            let statement = bundle::statement(&manifest.digest, predicate_type, predicate);
            let at = (destination, credentials);
            attach_bundle(at, signer, &subject, &statement, predicate_type, epoch).await?;
        }
    }
    Ok(())
}

/// One metadata record: what the outcome says of its source and Python, plus where the
/// image went (`repository`, `tag`) and what it is there (`digest`, `size`).
fn record_of(
    kind: metadata::Kind,
    outcome: &Outcome,
    (full_repository, tag): (&str, &str),
    (digest, size): (String, u64),
    platforms: Vec<String>,
) -> metadata::Record {
    let (registry, repository) = metadata::split_repository(full_repository);
    metadata::Record {
        kind,
        name: repository
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string(),
        registry,
        repository,
        tag: tag.to_string(),
        reference: format!("{full_repository}:{tag}"),
        digest,
        size,
        platforms,
        source_image: outcome.source.name.clone(),
        source_digest: outcome.source.digest.clone(),
        python_version: outcome.python_version.clone(),
        os_release: outcome.os_name.clone(),
        built_at: now(),
        site_packages: Some(outcome.site_packages.clone()),
        broken_modules: outcome.broken_modules.clone(),
        builder_pip: match kind {
            Variant::Buildroot => outcome.builder_pip.clone(),
            Variant::Runtime | Variant::Debug => None,
        },
        sbom: None,
        provenance: None,
        stages: None,
        signed_with: None,
        inputs: None,
        manifests: Vec::new(),
        compression: None,
        debug_info_stripped: match kind {
            Variant::Runtime if !outcome.stripped.files.is_empty() => {
                Some(outcome.stripped.clone())
            }
            _ => None,
        },
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
