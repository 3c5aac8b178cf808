#pragma once
// Container images from a local image store (`lpk-kubesim up --image-store DIR`): OCI
// archives (`*.tar`, as `skopeo copy ... oci-archive:FILE:REF` writes them) and OCI layout
// directories. An image is found by the `org.opencontainers.image.ref.name` annotation of
// its index entry, compared after normalization (normalize_reference), or by its manifest
// digest. Each image is unpacked once (umoci) into a read-only cache shared by every
// container that runs it, as a node's image store is.

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace lpk::kubesim {

/// What an image's config says a container runs with (the OCI image config's `config`).
struct ImageConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::pair<std::string, std::string>> env;
  std::string user;         // "1234", "1234:5678", "name", "name:group"; "" = root
  std::string working_dir;  // "" = "/"
};

/// An image ready to run: its unpacked root filesystem (never written to) and config.
struct UnpackedImage {
  std::filesystem::path rootfs;
  ImageConfig config;
  /// "REF@sha256:..." as containerStatuses[].imageID reports it.
  std::string image_id;
};

/// "nginx" -> "nginx:latest", "docker.io/library/redis:7" -> "redis:7",
/// "docker.io/team/app" -> "team/app:latest", "localhost/x:1" unchanged; a reference with
/// a digest keeps it ("app@sha256:..."), without an added tag.
std::string normalize_reference(const std::string& ref);

/// The image config of an OCI image config blob (JSON text); throws std::runtime_error when
/// it is not one.
ImageConfig parse_image_config(const std::string& config_json);

/// The uid and gid a USER string names, with the rootfs's /etc/passwd and /etc/group for
/// names (containerd's rules: a numeric uid without a group takes the passwd entry's gid,
/// or 0). nullopt with `error` set when a name is unknown.
struct UserIds {
  uid_t uid = 0;
  gid_t gid = 0;
};
std::optional<UserIds> resolve_user(const std::string& user, const std::filesystem::path& rootfs,
                                    std::string& error);

class ImageStore {
 public:
  /// store: the directory of archives and layouts; cache: where images are unpacked.
  ImageStore(std::filesystem::path store, std::filesystem::path cache);

  /// The image a pod's `image` names, unpacked (the first time, with umoci). nullopt when
  /// the store has no such image. Throws std::runtime_error when the image is there but
  /// cannot be read or unpacked. The store is read again at each call, so an image added
  /// while kubesim runs is found by the next pull.
  std::optional<UnpackedImage> pull(const std::string& image);

  const std::filesystem::path& dir() const { return store_; }

 private:
  std::filesystem::path store_, cache_;
};

}  // namespace lpk::kubesim
