// A recording stand-in for Flamenco Manager's job compiler, to test a job type script with node.
//
//   node harness.js JOB_TYPE_SCRIPT < job.json
//
// job.json is {"name": ..., "settings": {...}}. The script runs in a fresh context holding the
// globals Flamenco gives job compiler scripts (author.Task, author.Command, print, alert,
// shellSplit); compileJob(job) is called, and one JSON object is written to stdout:
//   exit 0: {"job_type": JOB_TYPE, "tasks": [{name, type, priority, commands, dependencies}], "printed"}
//   exit 1: {"error": message}   (the script threw: Flamenco would refuse the job with it)
//   exit 2: the harness itself was misused or the script did not load.
// Like the Manager, a task is recorded as it is when job.addTask() is called, author.Task needs a
// name and a type, and settings the submitter left out are simply absent (no defaults filled in).

"use strict";

const fs = require("fs");
const vm = require("vm");

function fail(message) {
    process.stderr.write(`harness: ${message}\n`);
    process.exit(2);
}

// POSIX-shell-like word splitting, the behaviour of Flamenco's shellSplit() (Go's shlex).
function shellSplit(text) {
    const words = [];
    let word = null;
    let quote = null;
    for (let i = 0; i < text.length; i++) {
        const ch = text[i];
        if (quote === "'") {
            if (ch === "'") quote = null;
            else word += ch;
        } else if (quote === '"') {
            if (ch === '"') quote = null;
            else if (ch === "\\" && i + 1 < text.length && '"\\$`'.includes(text[i + 1])) word += text[++i];
            else word += ch;
        } else if (/\s/.test(ch)) {
            if (word !== null) words.push(word);
            word = null;
        } else {
            if (word === null) word = "";
            if (ch === "'" || ch === '"') quote = ch;
            else if (ch === "\\" && i + 1 < text.length) word += text[++i];
            else word += ch;
        }
    }
    if (quote !== null) throw new Error(`EOF found when expecting closing quote in ${JSON.stringify(text)}`);
    if (word !== null) words.push(word);
    return words;
}

function makeAuthor() {
    return {
        Task(name, type) {
            name = String(name === undefined ? "" : name).trim();
            type = String(type === undefined ? "" : type).trim();
            if (name === "") throw new Error("author.Task(name, type): name is required");
            if (type === "") throw new Error("author.Task(name, type): type is required");
            const task = {
                name: name,
                type: type,
                priority: 50,
                commands: [],
                dependencies: [],
                addCommand(command) {
                    task.commands.push(command);
                },
                addDependency(other) {
                    task.dependencies.push(other);
                },
            };
            return task;
        },
        Command(name, parameters, totalStepCount) {
            return { name: name, parameters: parameters, totalStepCount: totalStepCount || 0 };
        },
    };
}

function snapshot(task) {
    return JSON.parse(JSON.stringify({
        name: task.name,
        type: task.type,
        priority: task.priority,
        commands: task.commands.map((c) => ({ name: c.name, parameters: c.parameters })),
        dependencies: task.dependencies.map((d) => d.name),
    }));
}

function main() {
    const scriptPath = process.argv[2];
    if (!scriptPath) fail("usage: node harness.js JOB_TYPE_SCRIPT < job.json");
    let job;
    try {
        job = JSON.parse(fs.readFileSync(0, "utf8"));
    } catch (err) {
        fail(`stdin is not a JSON job: ${err.message}`);
    }

    const printed = [];
    const record = (kind) => (...args) => {
        const line = args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ");
        printed.push(`${kind}: ${line}`);
        process.stderr.write(`${kind}: ${line}\n`);
    };
    const context = vm.createContext({
        author: makeAuthor(),
        print: record("print"),
        alert: record("alert"),
        shellSplit: shellSplit,
    });
    try {
        vm.runInContext(fs.readFileSync(scriptPath, "utf8"), context, { filename: scriptPath });
    } catch (err) {
        fail(`the job type script did not load: ${err && err.stack ? err.stack : err}`);
    }
    const jobType = vm.runInContext("typeof JOB_TYPE === 'undefined' ? undefined : JOB_TYPE", context);
    if (jobType === undefined || typeof context.compileJob !== "function") {
        fail("the script must define JOB_TYPE and compileJob(job)");
    }

    const tasks = [];
    const authoredJob = {
        name: job.name || "test job",
        created: new Date(0),
        priority: 50,
        settings: Object.assign({}, job.settings || {}),
        metadata: Object.assign({}, job.metadata || {}),
        addTask(task) {
            tasks.push(snapshot(task));
        },
    };
    try {
        context.compileJob(authoredJob);
    } catch (err) {
        const message = err instanceof Error || (err && err.message) ? err.message : String(err);
        process.stdout.write(JSON.stringify({ error: message }) + "\n");
        process.exit(1);
    }
    process.stdout.write(JSON.stringify({ job_type: jobType, tasks: tasks, printed: printed }) + "\n");
}

main();
