//! [`AlexNetBackend`] for [`Autodiff`]: each operation runs on the inner backend and records
//! a backward step that calls the inner backend's gradient operation.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::tensor::ops::{ConvOptions, FloatTensor};

use super::AlexNetBackend;

/// The backward step of `conv2d_relu`: parents x, weight, bias.
#[derive(Debug)]
struct Conv2dRelu;

impl<B: AlexNetBackend> Backward<B, 3> for Conv2dRelu {
    /// x, weight, the output, the options.
    type State = (
        FloatTensor<B>,
        FloatTensor<B>,
        FloatTensor<B>,
        ConvOptions<2>,
    );

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, weight_node, bias_node] = ops.parents;
        let output_grad = grads.consume::<B>(&ops.node);
        let (x, weight, output, options) = ops.state;
        let computed =
            B::conv2d_relu_backward(x, weight, output, output_grad, options, x_node.is_some());
        if let (Some(node), Some(grad)) = (x_node, computed.x) {
            grads.register::<B>(node.id, grad);
        }
        if let Some(node) = weight_node {
            grads.register::<B>(node.id, computed.weight);
        }
        if let Some(node) = bias_node {
            grads.register::<B>(node.id, computed.bias);
        }
    }
}

/// The backward step of `max_pool`: parent x.
#[derive(Debug)]
struct MaxPool;

impl<B: AlexNetBackend> Backward<B, 1> for MaxPool {
    /// x, kernel, stride.
    type State = (FloatTensor<B>, [usize; 2], [usize; 2]);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node] = ops.parents;
        let output_grad = grads.consume::<B>(&ops.node);
        let (x, kernel, stride) = ops.state;
        if let Some(node) = x_node {
            grads.register::<B>(
                node.id,
                B::max_pool_backward(x, kernel, stride, output_grad),
            );
        }
    }
}

impl<B: AlexNetBackend, C: CheckpointStrategy> AlexNetBackend for Autodiff<B, C> {
    fn max_pool(x: FloatTensor<Self>, kernel: [usize; 2], stride: [usize; 2]) -> FloatTensor<Self> {
        match MaxPool
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let output = B::max_pool(x.primitive.clone(), kernel, stride);
                prep.finish((x.primitive, kernel, stride), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::max_pool(x.primitive, kernel, stride)),
        }
    }

    fn conv2d_relu(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let parents = [x.node.clone(), weight.node.clone(), bias.node.clone()];
        match Conv2dRelu.prepare::<C>(parents).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let output = B::conv2d_relu(
                    x.primitive.clone(),
                    weight.primitive.clone(),
                    bias.primitive,
                    options.clone(),
                );
                let state = (x.primitive, weight.primitive, output.clone(), options);
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::conv2d_relu(
                x.primitive,
                weight.primitive,
                bias.primitive,
                options,
            )),
        }
    }
}
