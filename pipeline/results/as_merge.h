/* as_merge.h: `attnstat merge OUT.h5 PART.h5...`: combine the part files of an array-mode sweep
 * (each one a complete results file of `attnstat run CONFIG --models <subset>`) into one results
 * file whose /models is identical, dataset by dataset and attribute by attribute, to the file a
 * single `attnstat run CONFIG` would write.
 *
 * Refused, each with a one-line error naming the file (and the model) and exit code 4:
 *   a part that is missing or not an attnstat results file, a part whose root attribute
 *   `complete` is not 1, parts whose root `config` text differs (`sweep_part` may differ), a
 *   model present in two parts, a model of the config that no part has, a model that is not in
 *   the config. Bad command lines exit 2; failures to write OUT exit 5.
 *
 * OUT (serial HDF5, written as OUT.partial and renamed once closed):
 *   /                    attrs: tool, tool_version, git_commit, command_line (of the merge),
 *                               config, config_path (of the first part), merged_from (the part
 *                               files, newline-joined, in command-line order), start_time (earliest
 *                               part start), end_time (latest part end), merge_time, mpi_size
 *                               (largest part), complete = 1
 *   /models/<name>       H5Ocopy of each part's group, in the config's model order; dimension
 *                        scales and attributes come along (references inside the copied group
 *                        are remapped by H5Ocopy)
 *   /run/parts/<i>/      part i's /run (rank_busy_seconds, rank_bytes_read, rank_units: one per
 *                        rank of that part's job), attrs file, sweep_part, mpi_size, start_time,
 *                        end_time, command_line. A merged file has no /run/rank_* of its own:
 *                        the parts ran as separate jobs and their ranks are not one communicator. */
#ifndef AS_PIPELINE_AS_MERGE_H
#define AS_PIPELINE_AS_MERGE_H

/* argv[0] is "merge". No MPI. Returns the process exit code (enum as_exit): 0, 2 usage,
 * 4 a part is refused, 5 cannot write OUT. Messages go to stderr. */
int as_merge_cli(int argc, char **argv);

#endif
