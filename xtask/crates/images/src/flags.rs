//! The flags of `base` and `image`, with their help. The command table that puts every command
//! together is xtask's flags.rs.

use xtask_core::flags::Json;

#[derive(clap::Subcommand)]
pub enum BaseCommand {
    /// Print the content hash of everything that goes into the base image.
    Hash(BaseHash),
    /// Show the base tag, whether it exists locally and in the registry, and whether the
    /// Dockerfile's pin is current.
    Status(Json),
    /// Build the base image, only when its tag exists neither locally nor in the registry.
    Build(BaseBuild),
    /// Write (or with --check, verify) the base reference pinned in Dockerfile.
    Pin(BasePin),
    /// Name the inputs that differ between an existing base image and the current workspace.
    Diff(BaseDiff),
}

#[derive(clap::Args)]
pub struct BaseHash {
    /// Print the digest of every input.
    #[arg(long)]
    pub explain: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct BaseBuild {
    /// Push the image to the registry (logging in with `DOCKER_REGISTRY_USERNAME/PASSWORD`).
    #[arg(long)]
    pub push: bool,
    /// Build even when the tag already exists.
    #[arg(long)]
    pub force: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct BasePin {
    /// Only verify the pin; exit non-zero when it is stale.
    #[arg(long)]
    pub check: bool,
}

#[derive(clap::Args)]
pub struct BaseDiff {
    /// A base tag (32 hex characters, as `base hash` prints) or a full image reference.
    #[arg(value_parser = parse_base_image)]
    pub image: BaseImage,
}

/// What `base diff` compares against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaseImage {
    /// A tag of the configured base repository.
    Tag(String),
    /// `[registry/]name[:tag][@digest]`.
    Reference(String),
}

fn parse_base_image(text: &str) -> Result<BaseImage, String> {
    if text.is_empty() || text.chars().any(char::is_whitespace) {
        return Err("expected a base tag or an image reference, without spaces".to_owned());
    }
    if text.contains([':', '/', '@']) {
        return Ok(BaseImage::Reference(text.to_owned()));
    }
    if text.len() == 32
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Ok(BaseImage::Tag(text.to_owned()));
    }
    Err(format!(
        "`{text}` is neither a base tag (32 lower-case hex characters, as `cargo xtask base hash` prints) nor an image reference (registry/name:tag)"
    ))
}

#[derive(clap::Subcommand)]
pub enum ImageCommand {
    /// Build the app image FROM the current base (building or pulling the base only if needed).
    Build(Json),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_diff_arguments_are_checked_before_any_work() {
        assert_eq!(
            parse_base_image("0123456789abcdef0123456789abcdef"),
            Ok(BaseImage::Tag(
                "0123456789abcdef0123456789abcdef".to_owned()
            ))
        );
        assert!(matches!(
            parse_base_image("127.0.0.1:5000/base:abc"),
            Ok(BaseImage::Reference(_))
        ));
        let err = parse_base_image("nonsense").unwrap_err();
        assert!(err.contains("neither a base tag"), "{err}");
    }
}
