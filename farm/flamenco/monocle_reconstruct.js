// SPDX-License-Identifier: GPL-3.0-or-later
//
// Flamenco job type "monocle-reconstruct": reconstruct a folder of photos into 3D files on a
// Flamenco farm with Monocle's headless command.
//
// Install: copy this file into the `scripts/` folder next to the `flamenco-manager` executable
// and restart the Manager (see docs/farm.md). Needs Flamenco 3.5 or newer (an empty `blendfile`
// and the `shellSplit()` global arrived in 3.5) and Blender 4.2+ with Monocle enabled on every
// Worker.
//
// A job compiles to N independent tasks. Task k runs
//   blender -b -c monocle reconstruct INPUT -o OUTPUT --format F --engine E
//           --shard k/N --report OUTPUT/report-k-of-N.json [extra arguments]
// Monocle splits the sorted input list into N disjoint slices that together cover it, the same
// on every re-run, so the tasks share nothing but the output folder. A re-queued or failed task
// skips the inputs whose outputs already exist (unless "Overwrite" is on).

const MONOCLE_FORMATS = ["glb", "obj", "fbx", "usd", "blend"];
const MONOCLE_ENGINES = ["auto", "classic", "drawing", "transformers"];

// Options the job itself sets on every command; giving them again in "extra arguments" would
// break the split or the reports, so they are refused there.
const RESERVED_ARGS = ["-o", "--output", "--shard", "--report", "--format", "--engine", "--template-weight"];

const JOB_TYPE = {
    label: "Monocle Reconstruct",
    description: "Reconstruct every photo in a folder into 3D files with Monocle, split over N tasks",
    settings: [
        {
            key: "input_dir",
            label: "Input Folder",
            type: "string",
            subtype: "dir_path",
            required: true,
            description: "Folder of photos, searched recursively; it must be readable by every Worker",
        },
        {
            key: "output_dir",
            label: "Output Folder",
            type: "string",
            subtype: "dir_path",
            required: true,
            description: "Shared folder for the results; outputs mirror the input's sub-folders",
        },
        {
            key: "formats",
            label: "Formats",
            type: "string",
            default: "glb",
            required: true,
            description: "Comma-separated: glb, obj, fbx, usd, blend (for example 'glb,blend')",
        },
        {
            key: "engine",
            label: "Engine",
            type: "string",
            choices: MONOCLE_ENGINES,
            default: "auto",
            required: true,
            description: "Inference engine: auto (drawing for line art, else classic), classic (offline photos), drawing (line art) or transformers (learned models)",
        },
        {
            key: "num_tasks",
            label: "Tasks",
            type: "int32",
            default: 4,
            required: true,
            propargs: { min: 1, max: 10000 },
            description: "Number of tasks the input list is split into (each runs one Blender)",
        },
        {
            key: "use_template",
            label: "Blend Templates",
            type: "bool",
            default: false,
            description: "Blend a matching library template into each reconstruction",
        },
        {
            key: "template_weight",
            label: "Template Weight",
            type: "float",
            default: 0.5,
            propargs: { min: 0.0, max: 1.0 },
            description: "0 = reconstruction only, 1 = template only (used when Blend Templates is on)",
        },
        {
            key: "overwrite",
            label: "Overwrite",
            type: "bool",
            default: false,
            description: "Redo inputs whose outputs already exist instead of skipping them",
        },
        {
            key: "extra_args",
            label: "Extra Arguments",
            type: "string",
            description: "More `monocle reconstruct` options, for example '--detail 40000 --back solidify'",
        },
        {
            key: "blender_exe",
            type: "string",
            default: "{blender}",
            visible: "hidden",
            description: "Blender executable; the Manager's {blender} variable by default",
        },
    ],
};

function compileJob(job) {
    const s = readSettings(job.settings);
    const reportDir = trimTrailingSeparator(s.outputDir);
    for (let k = 1; k <= s.numTasks; k++) {
        const shard = `${k}/${s.numTasks}`;
        const args = [
            "-c", "monocle", "reconstruct", s.inputDir,
            "-o", s.outputDir,
            "--format", s.formats,
            "--engine", s.engine,
            "--shard", shard,
            "--report", `${reportDir}/report-${k}-of-${s.numTasks}.json`,
        ].concat(s.optional);
        const task = author.Task(`monocle-${k}-of-${s.numTasks}`, "blender");
        // `blender-render` is Flamenco's documented command for running Blender: the Worker runs
        // `{exe} {exeArgs} {argsBefore} {blendfile} {args}`, resolves the {blender} variable per
        // platform and finds Blender on PATH. Its docs ask to prefer it over the generic `exec`.
        // Monocle opens no blend file and `-c` must come last, so `blendfile` is empty (skipped
        // by Workers since 3.5) and `exeArgs` stays empty: the farm's {blenderArgs} are made for
        // rendering a file and may hold options (like --factory-startup) that disable extensions.
        task.addCommand(author.Command("blender-render", {
            exe: s.blenderExe,
            exeArgs: "",
            argsBefore: ["-b"],
            blendfile: "",
            args: args,
        }));
        job.addTask(task);
    }
    print(`monocle-reconstruct: ${s.numTasks} tasks over ${s.inputDir}`);
}

// Validated settings with defaults filled in; throws one sentence per problem.
function readSettings(settings) {
    const inputDir = requirePath(settings.input_dir, "Input Folder");
    const outputDir = requirePath(settings.output_dir, "Output Folder");
    const numTasks = settings.num_tasks === undefined ? 4 : Number(settings.num_tasks);
    if (!Number.isInteger(numTasks) || numTasks < 1) {
        throw `Tasks must be a whole number of at least 1, not '${settings.num_tasks}'.`;
    }
    const engine = settings.engine === undefined ? "auto" : String(settings.engine).trim();
    if (!MONOCLE_ENGINES.includes(engine)) {
        throw `Engine must be one of ${MONOCLE_ENGINES.join(", ")}, not '${engine}'.`;
    }
    const optional = [];
    if (settings.use_template) {
        const weight = Number(settings.template_weight === undefined ? 0.5 : settings.template_weight);
        if (!Number.isFinite(weight) || weight < 0 || weight > 1) {
            throw `Template Weight must be between 0 and 1, not '${settings.template_weight}'.`;
        }
        optional.push("--template-weight", String(weight));
    }
    if (settings.overwrite) {
        optional.push("--overwrite");
    }
    const extra = splitExtraArgs(settings.extra_args);
    return {
        inputDir: inputDir,
        outputDir: outputDir,
        formats: readFormats(settings.formats === undefined ? "glb" : settings.formats),
        engine: engine,
        numTasks: numTasks,
        optional: optional.concat(extra),
        blenderExe: nonEmpty(settings.blender_exe) ? String(settings.blender_exe).trim() : "{blender}",
    };
}

function nonEmpty(value) {
    return typeof value === "string" && value.trim() !== "";
}

function requirePath(value, label) {
    if (!nonEmpty(value)) {
        throw `${label} is empty: give a folder every Worker can reach.`;
    }
    return value.trim();
}

function readFormats(value) {
    const formats = [];
    for (const part of String(value).split(",")) {
        const fmt = part.trim().toLowerCase();
        if (fmt === "") {
            continue;
        }
        if (!MONOCLE_FORMATS.includes(fmt)) {
            throw `Unknown format '${fmt}': use ${MONOCLE_FORMATS.join(", ")}.`;
        }
        if (!formats.includes(fmt)) {
            formats.push(fmt);
        }
    }
    if (formats.length === 0) {
        throw `Formats is empty: give one or more of ${MONOCLE_FORMATS.join(", ")}.`;
    }
    return formats.join(",");
}

function splitExtraArgs(value) {
    if (!nonEmpty(value)) {
        return [];
    }
    const args = shellSplit(value);
    for (const arg of args) {
        const name = arg.split("=")[0];
        if (RESERVED_ARGS.includes(name)) {
            throw `Extra Arguments may not set ${name}: the job sets it (use the job's own setting).`;
        }
    }
    return args;
}

function trimTrailingSeparator(dir) {
    let end = dir.length;
    while (end > 1 && (dir[end - 1] === "/" || dir[end - 1] === "\\")) {
        end--;
    }
    return dir.slice(0, end);
}
