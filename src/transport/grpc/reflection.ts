import { type DescFile, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { ReflectionService } from "@grpc/reflection";
import { file_vaultplus_v1_lists } from "../../../gen/vaultplus/v1/lists_pb";

type PackageDefinition = ConstructorParameters<typeof ReflectionService>[0];

/**
 * Server reflection (v1 and v1alpha) from the descriptors compiled into gen/, so the
 * running server never re-parses .proto files. @grpc/reflection only reads
 * `fileDescriptorProtos` (serialized FileDescriptorProto) from each package entry.
 */
export function createReflectionService(files: DescFile[] = [file_vaultplus_v1_lists]): ReflectionService {
  const fileDescriptorProtos = withDependencies(files).map((file) => toBinary(FileDescriptorProtoSchema, file.proto));
  const definition = {
    [files.map((f) => f.proto.name).join(",")]: {
      format: "Protocol Buffer 3 FileDescriptorProto",
      type: {},
      fileDescriptorProtos,
    },
  } as unknown as PackageDefinition;
  return new ReflectionService(definition);
}

/** The files and everything they import, dependencies first. */
export function withDependencies(files: DescFile[]): DescFile[] {
  const seen = new Map<string, DescFile>();
  const visit = (file: DescFile): void => {
    if (seen.has(file.proto.name)) return;
    for (const dep of file.dependencies) visit(dep);
    seen.set(file.proto.name, file);
  };
  for (const file of files) visit(file);
  return [...seen.values()];
}
