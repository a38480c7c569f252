"""Command lines shared by the engine tests."""


def distill_args(data, teachers, out, *extra):
    return ["distill", "--output-dir", str(out), "--data", "pretrain.csv", "--data-root", str(data),
            "--num-frames", "8", "--sampling-rate", "2", "--input-size", "32", "--num-workers", "0",
            "--model", "student_tiny", "--model-options", '{"depth": 1, "drop_path_rate": 0.0}',
            "--image-teacher-checkpoint", str(teachers / "mae.safetensors"),
            "--video-teacher-checkpoint", str(teachers / "videomae.safetensors"),
            "--mask-ratio", "0.5", "--batch-size", "4", "--epochs", "2", "--lr", "1e-3",
            "--warmup-epochs", "1", "--log-every", "1", *extra]
